//! indicatif bars on stderr for the libraries' progress traits.

use std::cell::RefCell;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use stilts_train::io::Progress;

/// One byte-counting bar per file (a spinner when the size is unknown); notes are printed above
/// the bar. Serves GLUE downloads (`stilts data download`) and hub downloads (`--model org/name`).
#[derive(Default)]
pub struct ByteBars {
    bar: RefCell<Option<ProgressBar>>,
}

impl ByteBars {
    fn start(&self, what: &str, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{msg:>20} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{msg:>20} {spinner} {bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.bar.borrow_mut() = Some(bar);
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = &*self.bar.borrow() {
            bar.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }

    fn note(&self, message: &str) {
        match &*self.bar.borrow() {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }
}

impl Progress for ByteBars {
    fn start(&self, what: &str, total: Option<u64>) {
        ByteBars::start(self, what, total)
    }
    fn advance(&self, bytes: u64) {
        ByteBars::advance(self, bytes)
    }
    fn finish(&self) {
        ByteBars::finish(self)
    }
    fn note(&self, message: &str) {
        ByteBars::note(self, message)
    }
}
