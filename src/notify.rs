//! Notifications: a JSON message posted to a webhook when an operation of the workflow ends, so that the
//! people on call see it where they already look (Slack, Mattermost, any HTTP endpoint).
//!
//! The message is `{"text": ..., "report": ...}`: `text` at the top level is what Slack's and Mattermost's
//! incoming webhooks show, `report` is the operation's whole JSON report for any other receiver. A webhook
//! URL is a secret (Slack's carries its token in the path), so no message or error ever holds more of it
//! than [`redact`] leaves: the scheme and the host.

use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

/// How long a notification may take in all (connect, TLS, send, answer): a slow receiver must not hold up
/// the operation that reports to it for long.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How many redirects a notification follows.
const MAX_REDIRECTS: u32 = 3;

/// The message a notification posts.
#[derive(Debug, Serialize)]
struct Message<'a> {
    text: &'a str,
    report: &'a serde_json::Value,
}

/// Posts `{"text": text, "report": report}` as JSON to `url` (`https://` or `http://`), following up to
/// three redirects, within [`TIMEOUT`]. An answer other than 2xx is an error naming its status; no error
/// names more of the URL than its scheme and host.
pub fn notify(url: &str, text: &str, report: &serde_json::Value) -> Result<()> {
    notify_within(url, text, report, TIMEOUT)
}

fn notify_within(url: &str, text: &str, report: &serde_json::Value, timeout: Duration) -> Result<()> {
    let shown = redact(url);
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the notification URL `{shown}` is not an `https://` or `http://` URL"),
        ));
    }
    let body = serde_json::to_vec(&Message { text, report }).expect("a notification serializes");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(MAX_REDIRECTS)
        .http_status_as_error(false)
        .user_agent(format!("pgsafe/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let response = agent.post(url).header("Content-Type", "application/json").send(&body[..]).map_err(|e| {
        Error::new(ErrorKind::Io, format!("posting the notification to `{shown}`: {}", scrub(&e.to_string(), url)))
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::new(
            ErrorKind::Io,
            format!("the notification to `{shown}` was answered with HTTP status {}", status.as_u16()),
        )
        .with_hint("check the webhook URL given with `--notify` or `PGSAFE_NOTIFY_URL`"));
    }
    Ok(())
}

/// `url` with nothing secret left: `scheme://host[:port]`, then `/…` when it had a path or a query. The
/// user name and password, the path (a Slack webhook's token) and the query go.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "…".to_owned() };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let tail = if rest[end..].trim_start_matches('/').is_empty() { "" } else { "/…" };
    format!("{scheme}://{host}{tail}")
}

/// `text` (an HTTP client's error) with the URL, and each secret part of it, replaced by its redacted form.
fn scrub(text: &str, url: &str) -> String {
    let mut text = text.replace(url, &redact(url));
    let Some((_, rest)) = url.split_once("://") else { return text };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some((userinfo, _)) = rest[..end].rsplit_once('@') {
        text = text.replace(userinfo, "…");
    }
    if rest[end..].len() > 1 {
        text = text.replace(&rest[end..], "/…");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::time::Instant;

    use super::*;

    const TOKEN: &str = "T000/B000/XXXXsecretXXXX";

    /// A server on 127.0.0.1 that reads one request, answers it with `status`, and hands back the body.
    fn one_request(status: u16) -> (String, std::thread::JoinHandle<(String, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://user:pass@{}/services/{TOKEN}?key=sekret", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            write!(stream, "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").unwrap();
            (head, String::from_utf8(body).unwrap())
        });
        (url, server)
    }

    #[test]
    fn the_message_holds_the_text_at_the_top_and_the_report() {
        let (url, server) = one_request(200);
        let report = serde_json::json!({"snapshot": {"id": "shop-20261202T031500Z"}, "rows": 42});
        notify(&url, "snapshot `shop-20261202T031500Z` taken", &report).unwrap();
        let (head, body) = server.join().unwrap();
        assert!(head.starts_with(&format!("POST /services/{TOKEN}?key=sekret HTTP/1.1\r\n")), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: application/json\r\n"), "{head}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body, serde_json::json!({"text": "snapshot `shop-20261202T031500Z` taken", "report": report}));
    }

    #[test]
    fn a_refusal_names_the_status_and_never_the_urls_secrets() {
        let (url, server) = one_request(500);
        let e = notify(&url, "x", &serde_json::Value::Null).unwrap_err();
        server.join().unwrap();
        let text = format!("{e} {}", e.hint().unwrap_or_default());
        assert!(text.contains("answered with HTTP status 500"), "{text}");
        let host = url.split_once('@').unwrap().1.split_once('/').unwrap().0;
        assert!(text.contains(&format!("`http://{host}/…`")), "{text}");
        for secret in ["secret", "sekret", "pass", "T000", "services"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn an_unreachable_receiver_is_an_error_within_the_timeout() {
        // Nobody listens on a port just freed: refused at once.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/hooks/{TOKEN}");
        let e = notify(&url, "x", &serde_json::Value::Null).unwrap_err();
        assert!(e.to_string().starts_with(&format!("posting the notification to `http://127.0.0.1:{port}/…`")), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");

        // A receiver that takes the connection and never answers is given up on when the time is up.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/{TOKEN}", listener.local_addr().unwrap());
        let started = Instant::now();
        let e = notify_within(&url, "x", &serde_json::Value::Null, Duration::from_millis(500)).unwrap_err();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(400) && took < Duration::from_secs(5), "{took:?}");
        assert!(e.to_string().contains("timeout"), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
        drop(listener);
    }

    #[test]
    fn https_runs_on_the_crates_own_tls_without_a_process_wide_provider() {
        // A receiver that closes the connection at once: the TLS handshake fails with an error (a missing
        // crypto provider would panic instead).
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}/hooks/{TOKEN}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || drop(listener.accept().unwrap()));
        let e = notify(&url, "x", &serde_json::Value::Null).unwrap_err();
        server.join().unwrap();
        assert!(e.to_string().starts_with("posting the notification to `https://127.0.0.1:"), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn a_clients_error_loses_the_urls_secrets() {
        let url = "https://u:pw@example.com/services/TOKEN?key=K";
        assert_eq!(scrub(&format!("bad uri: {url}"), url), "bad uri: https://example.com/…");
        assert_eq!(scrub("at /services/TOKEN?key=K as u:pw", url), "at /… as …");
    }

    #[test]
    fn urls_are_shown_by_scheme_and_host_alone() {
        assert_eq!(redact("https://hooks.slack.com/services/T0/B0/xyz"), "https://hooks.slack.com/…");
        assert_eq!(redact("http://u:p@example.com:8080/a?b=c"), "http://example.com:8080/…");
        assert_eq!(redact("https://example.com?token=x"), "https://example.com/…");
        assert_eq!(redact("https://example.com/"), "https://example.com");
        assert_eq!(redact("example.com/secret"), "…");
        let e = notify("ftp://example.com/secret", "x", &serde_json::Value::Null).unwrap_err();
        assert_eq!(e.to_string(), "the notification URL `ftp://example.com/…` is not an `https://` or `http://` URL");
    }
}
