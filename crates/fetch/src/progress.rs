//! Progress bars on stderr, drawn only when stderr is a terminal (indicatif hides them
//! otherwise, so logs and CI output stay clean). Without a terminal a fetch says one line when
//! it starts instead, so that a long first download is not silent.

use std::cell::RefCell;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub(crate) struct Progress {
    enabled: bool,
    /// Progress was asked for but stderr is not a terminal: one line at the start instead.
    plain: bool,
    label: String,
    bar: RefCell<Option<ProgressBar>>,
}

impl Progress {
    pub(crate) fn new(enabled: bool, label: String) -> Self {
        let terminal = std::io::stderr().is_terminal();
        Self {
            enabled: enabled && terminal,
            plain: enabled && !terminal,
            label,
            bar: RefCell::new(None),
        }
    }

    /// The one bar of this fetch, created on first use.
    fn bar(&self) -> Option<ProgressBar> {
        if !self.enabled {
            return None;
        }
        let mut slot = self.bar.borrow_mut();
        let bar = slot.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Some(bar.clone())
    }

    /// A fetch begins: `line` on stderr when no bar can be drawn (the bar says it otherwise).
    pub(crate) fn starting(&self, line: &str) {
        if self.plain {
            eprintln!("{line}");
        }
    }

    /// A byte counter for one transfer, `done` bytes already present (a resumed download).
    pub(crate) fn start_bytes(&self, total: Option<u64>, done: u64) {
        let Some(bar) = self.bar() else { return };
        let template = if total.is_some() {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{spinner} {msg} {bytes} {bytes_per_sec}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(self.label.clone());
        match total {
            Some(t) => bar.set_length(t),
            None => bar.unset_length(),
        }
        bar.set_position(done);
    }

    pub(crate) fn advance(&self, n: u64) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.inc(n);
        }
    }

    /// What is happening now, for a step without a byte count (e.g. `pip download`).
    pub(crate) fn step(&self, message: &str) {
        let Some(bar) = self.bar() else { return };
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.unset_length();
        bar.set_message(format!("{}: {message}", self.label));
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
