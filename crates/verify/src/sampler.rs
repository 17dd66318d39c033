//! The server's gauges read in the background while the load runs: the highest resident
//! memory and batch size seen, for the memory and batching checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ms_server::metrics::{BATCH_SIZE, RSS};

use crate::client::Client;
use crate::prom;

/// How often the gauges are read during the load.
pub const SAMPLE_MS: u64 = 100;

/// The highest values of the server's gauges while the sampler ran.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peaks {
    /// Resident memory in bytes, and the number of samples that had it.
    pub rss: Option<(f64, usize)>,
    /// Requests in the running batch.
    pub batch: Option<f64>,
    pub samples: usize,
}

/// Samples the server's resident memory and batch size gauges in the background.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Peaks>,
}

impl Sampler {
    pub fn start(client: Client) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut peaks = Peaks::default();
            loop {
                if let Ok(r) = client.get("/metrics")
                    && r.status == 200
                {
                    let samples = prom::parse(&r.body);
                    peaks.samples += 1;
                    if let Some(v) = prom::sum(&samples, RSS) {
                        let (max, n) = peaks.rss.unwrap_or((0.0, 0));
                        peaks.rss = Some((max.max(v), n + 1));
                    }
                    if let Some(b) = prom::sum(&samples, BATCH_SIZE) {
                        peaks.batch = Some(peaks.batch.unwrap_or(0.0).max(b));
                    }
                }
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(SAMPLE_MS));
            }
            peaks
        });
        Sampler { stop, handle }
    }

    pub fn stop(self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}
