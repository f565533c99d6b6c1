//! `--notify URL`: the webhook an operation posts to when it ends. A notification that fails is a warning:
//! the operation it reports on has already succeeded or failed on its own.

use clap::Args;
use serde::Serialize;

/// Where to post a message when the operation ends.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// Post a JSON message (`{"text": ..., "report": ...}`, Slack- and Mattermost-compatible) to URL when
    /// the operation ends, whether it succeeded or failed. A failed post is a warning.
    #[arg(long = "notify", value_name = "URL", env = "PGSAFE_NOTIFY_URL", hide_env_values = true)]
    url: Option<String>,
}

impl NotifyArgs {
    /// Posts `text` and `report` when a URL was given; a failure is a warning on stderr, never an error.
    pub fn send(&self, text: &str, report: &impl Serialize) {
        let Some(url) = self.url.as_deref().filter(|u| !u.is_empty()) else { return };
        let report = serde_json::to_value(report).expect("a report serializes");
        if let Err(e) = pgsafe::notify::notify(url, text, &report) {
            eprintln!("warning: could not notify: {e}");
        }
    }
}
