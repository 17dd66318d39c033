//! Free loopback ports for test servers. All of one server's ports are taken at once (every
//! listener is held until all are chosen, so they differ from each other) and released right
//! before the server starts; another process may grab one in that moment, so callers retry the
//! start with fresh ports when the server cannot bind.

use std::net::TcpListener;

/// `n` distinct ports that were free on 127.0.0.1 a moment ago.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .expect("a bound listener has an address")
                .port()
        })
        .collect()
}

/// Whether nothing listens on 127.0.0.1:`port` (it can be bound).
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}
