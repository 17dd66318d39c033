//! Progress bars on stderr, drawn only when stderr is a terminal (indicatif hides them
//! otherwise, so logs and CI output stay clean).

use std::cell::RefCell;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub(crate) struct Progress {
    enabled: bool,
    label: String,
    bar: RefCell<Option<ProgressBar>>,
}

impl Progress {
    pub(crate) fn new(enabled: bool, label: String) -> Self {
        Self {
            enabled: enabled && std::io::stderr().is_terminal(),
            label,
            bar: RefCell::new(None),
        }
    }

    /// A byte counter for one transfer, `done` bytes already present (a resumed download).
    pub(crate) fn start_bytes(&self, total: Option<u64>, done: u64) {
        if !self.enabled {
            return;
        }
        let bar = match total {
            Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        let template = if total.is_some() {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg} {bytes} {bytes_per_sec}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(self.label.clone());
        bar.set_position(done);
        if let Some(old) = self.bar.replace(Some(bar)) {
            old.finish_and_clear();
        }
    }

    pub(crate) fn advance(&self, n: u64) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.inc(n);
        }
    }

    /// One line saying what is happening (a step without a byte count, e.g. `pip download`).
    pub(crate) fn step(&self, message: &str) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.set_message(format!("{}: {message}", self.label));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        if let Some(old) = self.bar.replace(Some(bar)) {
            old.finish_and_clear();
        }
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
