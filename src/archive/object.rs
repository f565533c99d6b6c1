//! Archives in object storage (`s3://bucket/key` on S3-compatible services, `az://container/key` on Azure
//! Blob Storage), through the `object_store` crate.
//!
//! Writing ([`ObjectUpload`]) is a multipart upload fed by the archive writer's thread: parts of 8 MiB go
//! out while the next fills, with a bounded number of bytes in flight, and the object appears only when
//! the upload is completed, after the footer. An upload dropped before that (an error, an interruption) is
//! aborted, so a key never holds a partial archive. Reading ([`ObjectSource`]) is by ranged requests, as
//! a file is read at offsets: the object's size from one HEAD, its two ends at once (header, key frame, catalog;
//! footer, manifest), then each chunk a worker asks for. Nothing holds the whole archive.
//!
//! Requests run on a small runtime of this module's own, so that the archive's synchronous readers and
//! writer (plain threads, blocking threads of another runtime, or async code that reads one frame) can
//! wait for them anywhere without blocking on a runtime they are part of. An operation's [`Cancel`]
//! (Ctrl-C, SIGTERM) ends those waits at once: the request is dropped, its connection closed. Transient
//! failures (5xx, a dropped connection, a timeout) are retried with exponential backoff by `object_store`;
//! an endpoint that accepts connections and never answers fails in bounded time (see `ANSWER_TIMEOUT`).
//!
//! Credentials and the endpoint come from the standard AWS environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...),
//! and what it leaves open from the AWS profile of the shared files (`AWS_PROFILE`, see `profile`);
//! none of it is ever printed or logged.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientConfigKey, MultipartId, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind, Result};
use crate::format::ArchiveSource;

/// The object storage services an archive can live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Service {
    /// Amazon S3 and S3-compatible services (MinIO, Ceph, R2, moto): `s3://bucket/key`.
    #[default]
    S3,
    /// Azure Blob Storage: `az://container/key`, the account from the Azure environment.
    Azure,
}

impl Service {
    pub(crate) fn scheme(self) -> &'static str {
        match self {
            Service::S3 => "s3",
            Service::Azure => "az",
        }
    }

    /// Parses a URL's scheme: `Ok(None)` for one that is no object storage's.
    pub(crate) fn of(scheme: &str) -> Option<Service> {
        match scheme {
            "s3" => Some(Service::S3),
            "az" | "azure" => Some(Service::Azure),
            _ => None,
        }
    }

    /// What a place in it is called: a bucket, or an Azure container.
    fn bucket_word(self) -> &'static str {
        match self {
            Service::S3 => "bucket",
            Service::Azure => "container",
        }
    }
}

/// The schemes, for messages.
pub(crate) const SCHEMES: &str = "`s3://bucket/key` or `az://container/key`";

/// Where an archive lives in object storage: a service, a bucket (an Azure container) and a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLocation {
    pub service: Service,
    pub bucket: String,
    pub key: String,
}

impl ObjectLocation {
    /// Parses `s3://bucket/key` or `az://container/key`. `Ok(None)` when `s` is no URL (a local path); an
    /// error for a URL of another scheme, or without a bucket or a key.
    pub fn parse(s: &str) -> Result<Option<Self>> {
        let Some((scheme, rest)) = s.split_once("://") else { return Ok(None) };
        let invalid = |problem: &str| Error::new(ErrorKind::InvalidInput, format!("`{s}`: {problem}"));
        let Some(service) = Service::of(scheme) else {
            return Err(invalid(&format!("`{scheme}://` is not supported: archives go to files or to {SCHEMES}"))
                .with_hint("a local file named like a URL can be given as `./NAME`"));
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || key.is_empty() {
            return Err(invalid(&format!(
                "an object's URL is `{}://{}/key`, with both a {} and a key",
                service.scheme(),
                service.bucket_word(),
                service.bucket_word()
            )));
        }
        if key.ends_with('/') {
            // The client drops the slash: the object would be written under another key than the one named.
            return Err(invalid("the key ends with `/`, as a folder's would: name the archive itself")
                .with_hint(format!("for example `{s}backup.pgsafe`")));
        }
        ObjectPath::parse(key).map_err(|e| invalid(&format!("invalid key: {e}")))?;
        Ok(Some(ObjectLocation { service, bucket: bucket.to_string(), key: key.to_string() }))
    }

    pub(crate) fn path(&self) -> ObjectPath {
        // Checked by `parse`; `from` would escape what `parse` refused, never panic.
        ObjectPath::parse(&self.key).unwrap_or_else(|_| ObjectPath::from(self.key.as_str()))
    }
}

impl fmt::Display for ObjectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}/{}", self.service.scheme(), self.bucket, self.key)
    }
}

/// A client of one bucket (or container).
pub(crate) type Bucket = Arc<dyn ObjectStore>;

/// A client of one bucket's multipart uploads.
type Uploads = Arc<dyn MultipartStore>;

/// Connects to `location`'s bucket with the environment's credentials and endpoint. Makes no request.
fn connect(location: &ObjectLocation) -> Result<Bucket> {
    connect_bucket(location.service, &location.bucket, &location.to_string())
}

/// How long the endpoint gets to answer a request (HEAD, a ranged GET, a multipart upload's creation,
/// completion or abort, the store's small objects) and, once it answers, between two reads of the body:
/// an endpoint that accepts connections and never answers is given up on after this, not after a part's
/// upload time. `PGSAFE_OBJECT_TIMEOUT` (such as `20s`) changes it, for an endpoint known to be slow or
/// for tests. 60 s by default, the AWS SDKs' read timeout: a busy S3 answers in well under a second, and
/// a large upload's completion answers at once and then keeps the connection alive with whitespace.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a part's upload (5 MiB or more, up to 640 MiB) may take from its first byte to its answer:
/// a slow link must have time to send one. A part's request is answered only once its body was sent, so
/// no shorter timeout can tell a slow link from an endpoint that does not read.
const PART_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a connection may take to be set up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an upload's abort, the cleanup of a dump that failed or was interrupted, is waited for: an
/// interruption must end promptly even when the endpoint no longer answers.
const ABORT_WAIT: Duration = Duration::from_secs(5);

/// The longest requests are retried for: long enough to ride out an endpoint's restart.
const RETRY_WINDOW: Duration = Duration::from_secs(120);

/// The variable that sets [`ANSWER_TIMEOUT`].
const TIMEOUT_VARIABLE: &str = "PGSAFE_OBJECT_TIMEOUT";

/// [`ANSWER_TIMEOUT`], or what `PGSAFE_OBJECT_TIMEOUT` says.
fn answer_timeout() -> Result<Duration> {
    let Ok(text) = std::env::var(TIMEOUT_VARIABLE) else { return Ok(ANSWER_TIMEOUT) };
    match humantime::parse_duration(text.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{TIMEOUT_VARIABLE}` is `{text}`, not a duration such as `60s` or `500ms`"),
        )),
    }
}

/// Requests are retried for twice the answer timeout, at most [`RETRY_WINDOW`]: with the default timeout,
/// the two minutes an endpoint's restart may take; with a shorter one (a test's), a hung endpoint fails
/// as fast as it was asked to.
fn retry_window(answer: Duration) -> Duration {
    RETRY_WINDOW.min(answer * 2)
}

/// Every request is retried on transient failures, with exponential backoff from half a second to 16
/// seconds: ten retries take about a minute, which rides out an endpoint's restart (the default backoff,
/// from 100 ms, spent eight retries in 1 to 4 seconds and failed a dump on a 4-second outage); never past
/// `window` from the request's start. A request that timed out is retried when repeating it is harmless
/// (`object_store` says which: reads, a part's upload, an upload's creation).
fn retry(window: Duration) -> RetryConfig {
    let backoff =
        BackoffConfig { init_backoff: Duration::from_millis(500), max_backoff: Duration::from_secs(16), base: 2.0 };
    RetryConfig { backoff, max_retries: 10, retry_timeout: window }
}

/// What a client is for, which sets its timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requests {
    /// Requests and answers of bounded size, or read as they come: the endpoint must answer, and keep
    /// sending, within the answer timeout.
    Answered,
    /// Part uploads: [`PART_TIMEOUT`] for each.
    Parts,
}

/// The HTTP client's timeouts for `requests`, set key by key on each service's builder:
/// `with_client_options` would replace what the environment set.
fn timeouts(requests: Requests, answer: Duration) -> Vec<(ClientConfigKey, String)> {
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let mut keys = vec![
        (ClientConfigKey::Timeout, ms(PART_TIMEOUT.max(answer))),
        (ClientConfigKey::ConnectTimeout, ms(CONNECT_TIMEOUT)),
    ];
    if requests == Requests::Answered {
        // Until the answer's headers, then between two reads of its body.
        keys.push((ClientConfigKey::ReadTimeout, ms(answer)));
    }
    keys
}

/// Refuses what the S3 client would panic on rather than report: an endpoint that is not an `http(s)`
/// URL, and credentials with spaces or control characters (a key file saved with Windows line endings).
fn check_s3_environment(url: &str) -> Result<()> {
    let refuse = |message: String| {
        Err(Error::new(ErrorKind::InvalidInput, format!("`{url}`: {message}"))
            .with_hint("the endpoint comes from `AWS_ENDPOINT_URL`, credentials from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`"))
    };
    for var in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"] {
        let Ok(value) = std::env::var(var) else { continue };
        let parsed = reqwest::Url::parse(&value);
        if !parsed.is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()) {
            return refuse(format!(
                "`{var}` is `{value}`, not a URL such as `https://s3.eu-west-1.amazonaws.com` or `http://localhost:9000`"
            ));
        }
    }
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        let Ok(value) = std::env::var(var) else { continue };
        if value.chars().any(|c| c.is_control() || c == ' ') {
            return refuse(format!(
                "`{var}` holds a space or a control character (a line ending of a file saved on Windows?)"
            ));
        }
    }
    Ok(())
}

/// Refuses, as [`check_s3_environment`] does for the environment, a profile's endpoint that is no URL and
/// keys with spaces or control characters, naming the profile's setting.
fn check_profile(url: &str, profile: &super::profile::Profile) -> Result<()> {
    let refuse = |message: String| {
        Err(Error::new(ErrorKind::InvalidInput, format!("`{url}`: {message}")).with_hint(
            "the AWS profile comes from `AWS_PROFILE` (or `default`), in `~/.aws/credentials` and `~/.aws/config`",
        ))
    };
    if let Some(value) = &profile.endpoint_url {
        let parsed = reqwest::Url::parse(value);
        if !parsed.is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()) {
            return refuse(format!(
                "the AWS profile's `endpoint_url` is `{value}`, not a URL such as `http://localhost:9000`"
            ));
        }
    }
    let keys = [
        ("aws_access_key_id", &profile.access_key_id),
        ("aws_secret_access_key", &profile.secret_access_key),
        ("aws_session_token", &profile.session_token),
    ];
    for (key, value) in keys {
        if value.as_ref().is_some_and(|v| v.chars().any(|c| c.is_control() || c == ' ')) {
            return refuse(format!("the AWS profile's `{key}` holds a space or a control character"));
        }
    }
    Ok(())
}

/// A client of one bucket, of either service.
enum Client {
    S3(AmazonS3),
    Azure(MicrosoftAzure),
}

/// Connects to `bucket` of `service` (`url` names it in errors) with the environment's credentials and
/// endpoint. Makes no request.
pub(crate) fn connect_bucket(service: Service, bucket: &str, url: &str) -> Result<Bucket> {
    Ok(match client(service, bucket, url, Requests::Answered)? {
        Client::S3(s3) => Arc::new(s3),
        Client::Azure(azure) => Arc::new(azure),
    })
}

/// Connects to `location`'s bucket for a multipart upload: a client for `requests`.
fn connect_uploads(location: &ObjectLocation, requests: Requests) -> Result<Uploads> {
    Ok(match client(location.service, &location.bucket, &location.to_string(), requests)? {
        Client::S3(s3) => Arc::new(s3),
        Client::Azure(azure) => Arc::new(azure),
    })
}

fn client(service: Service, bucket: &str, url: &str, requests: Requests) -> Result<Client> {
    install_crypto_provider();
    let answer = answer_timeout()?;
    let built = match service {
        Service::S3 => {
            check_s3_environment(url)?;
            let profile = super::profile::load(|name| std::env::var(name).ok())
                .map_err(|e| Error::new(e.kind(), format!("`{url}`: {e}")).with_hint(e.hint().unwrap_or_default()))?
                .unwrap_or_default();
            check_profile(url, &profile)?;
            let mut builder =
                AmazonS3Builder::from_env().with_bucket_name(bucket).with_retry(retry(retry_window(answer)));
            if let (Some(key), Some(secret)) = (&profile.access_key_id, &profile.secret_access_key) {
                builder = builder.with_access_key_id(key).with_secret_access_key(secret);
                if let Some(token) = &profile.session_token {
                    builder = builder.with_token(token);
                }
            }
            if let Some(region) = &profile.region {
                builder = builder.with_region(region);
            }
            if let Some(endpoint) = &profile.endpoint_url {
                builder = builder.with_endpoint(endpoint);
            }
            // A local endpoint (MinIO, moto, a test) speaks plain HTTP: saying so in its URL is enough.
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .ok()
                .or(profile.endpoint_url)
                .unwrap_or_default();
            if endpoint.starts_with("http://") {
                builder = builder.with_allow_http(true);
            }
            for (key, value) in timeouts(requests, answer) {
                builder = builder.with_config(AmazonS3ConfigKey::Client(key), value);
            }
            builder.build().map(Client::S3)
        }
        Service::Azure => {
            let mut builder =
                MicrosoftAzureBuilder::from_env().with_container_name(bucket).with_retry(retry(retry_window(answer)));
            for (key, value) in timeouts(requests, answer) {
                builder = builder.with_config(AzureConfigKey::Client(key), value);
            }
            builder.build().map(Client::Azure)
        }
    };
    built.map_err(|e| {
        let hint = match service {
            Service::S3 => "the bucket, region and endpoint come from `AWS_REGION` and `AWS_ENDPOINT_URL`, credentials from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`",
            Service::Azure => "the account comes from `AZURE_STORAGE_ACCOUNT_NAME`, its key from `AZURE_STORAGE_ACCOUNT_KEY` (or a SAS token, or `AZURE_STORAGE_USE_EMULATOR=true` for Azurite)",
        };
        Error::new(ErrorKind::InvalidInput, format!("`{url}`: cannot set up the {} client", match service {
            Service::S3 => "S3",
            Service::Azure => "Azure",
        }))
        .with_source(e)
        .with_hint(hint)
    })
}

/// The HTTP client's TLS needs a process-wide crypto provider: ring, the one the project's other TLS
/// connections use. Installing it a second time (or after a caller did) changes nothing.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The runtime that runs this module's requests.
fn runtime() -> Result<&'static Runtime> {
    static RUNTIME: OnceLock<std::io::Result<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("pgsafe-object-io")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start the threads that talk to object storage: {e}")))
}

/// Runs `f` on the module's runtime and waits for it on this thread, whatever thread this is.
pub(crate) fn wait<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> Result<T> {
    wait_unless(&Cancel::new(), "", f)
}

/// [`wait`], until `cancel` is cancelled: `f` is then dropped (a request's connection closed) and the
/// wait ends with [`ErrorKind::Cancelled`] at once, saying that `what` was interrupted. A thread blocked
/// here is what a signal must be able to stop.
pub(crate) fn wait_unless<T: Send + 'static>(
    cancel: &Cancel,
    what: &str,
    f: impl Future<Output = T> + Send + 'static,
) -> Result<T> {
    cancel.check(what)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let watched = cancel.clone();
    runtime()?.spawn(async move {
        tokio::select! {
            done = f => { let _ = tx.send(Some(done)); }
            () = watched.cancelled() => { let _ = tx.send(None); }
        }
    });
    match rx.recv() {
        Ok(Some(done)) => Ok(done),
        Ok(None) => Err(Error::new(ErrorKind::Cancelled, format!("{what} was interrupted"))),
        Err(_) => Err(Error::new(ErrorKind::Io, "a request to object storage stopped before it was done")),
    }
}

/// Says what failed in words a user can act on, naming the bucket and the key.
pub(crate) fn object_error(doing: &str, location: &ObjectLocation, e: object_store::Error) -> Error {
    let text = error_chain(&e);
    let bucket = &location.bucket;
    let (word, s3) = (location.service.bucket_word(), location.service == Service::S3);
    let (problem, hint): (String, Option<String>) = if text.contains("NoSuchBucket")
        || text.contains("ContainerNotFound")
    {
        (
            format!("the {word} `{bucket}` does not exist"),
            Some(match s3 {
                true => "check the bucket's name, `AWS_REGION` and `AWS_ENDPOINT_URL`".into(),
                false => "check the container's name and `AZURE_STORAGE_ACCOUNT_NAME`".into(),
            }),
        )
    } else if matches!(e, object_store::Error::NotFound { .. }) {
        (format!("there is no object `{}` in the {word} `{bucket}`", location.key), None)
    } else if matches!(e, object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. })
        || [
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "InvalidToken",
            "AuthenticationFailed",
            "AuthorizationFailure",
        ]
        .iter()
        .any(|code| text.contains(code))
    {
        (
            "access denied".into(),
            Some(match s3 {
                true => "check `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`), or the keys of the AWS profile (`AWS_PROFILE`), and the bucket's policy"
                    .into(),
                false => "check `AZURE_STORAGE_ACCOUNT_NAME` and `AZURE_STORAGE_ACCOUNT_KEY` (or the SAS token) and the container's access".into(),
            }),
        )
    } else if text.contains("timed out") {
        // Checked before the connection's failures: a request that timed out was sent "with an error".
        let answer = answer_timeout().unwrap_or(ANSWER_TIMEOUT);
        (
            "the storage endpoint did not answer".into(),
            Some(format!(
                "requests wait {} for an answer ({} for a part's upload) and are retried for up to {}; check \
                 `{}` and the network (`{TIMEOUT_VARIABLE}` gives a slow endpoint longer)",
                humantime::format_duration(answer),
                humantime::format_duration(PART_TIMEOUT),
                humantime::format_duration(retry_window(answer)),
                if s3 { "AWS_ENDPOINT_URL" } else { "AZURE_STORAGE_ACCOUNT_NAME" }
            )),
        )
    } else if text.contains("error sending request") || text.contains("onnect") || text.contains("dns error") {
        (
            "cannot reach the storage endpoint".into(),
            Some(match s3 {
                true => "check `AWS_ENDPOINT_URL` and `AWS_REGION`, and the network".into(),
                false => {
                    "check `AZURE_STORAGE_ACCOUNT_NAME` (and `AZURITE_BLOB_STORAGE_URL` for Azurite), and the network"
                        .into()
                }
            }),
        )
    } else {
        ("the request failed".into(), None)
    };
    let error =
        Error::new(ErrorKind::Io, format!("{doing} `{location}`: {problem}")).with_source(io::Error::other(text));
    match hint {
        Some(h) => error.with_hint(h),
        None => error,
    }
}

/// The error and its causes on one line: object_store's message alone often leaves out the server's.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// An archive object read by ranged requests.
#[derive(Debug)]
pub struct ObjectSource {
    store: Bucket,
    location: ObjectLocation,
    path: ObjectPath,
    len: u64,
    /// The object's first and last bytes, fetched on open: what an archive's opening reads (header, key
    /// frame, catalog; footer, manifest) mostly lies there, so it costs one round of requests, not five.
    ends: Vec<(u64, Vec<u8>)>,
    /// Ends the wait for a read: the operation's, or one never cancelled.
    cancel: Cancel,
}

/// Bytes of the object's start read on open: the header, the key frame and a catalog of a few hundred
/// tables.
const HEAD_BYTES: u64 = 256 << 10;
/// Bytes of the object's end read on open: the footer and a manifest of some thousands of chunks.
const TAIL_BYTES: u64 = 1 << 20;

impl ObjectSource {
    /// Finds the object and its size (one HEAD request). `cancel` interrupts this and every later read.
    pub fn open(location: &ObjectLocation, cancel: &Cancel) -> Result<Self> {
        let store = connect(location)?;
        let path = location.path();
        let (s, p) = (store.clone(), path.clone());
        let what = reading(location);
        let meta = match wait_unless(cancel, &what, async move { s.head(&p).await })? {
            Ok(meta) => meta,
            // A HEAD's 404 has no body to say whether the key or the bucket is missing; a GET's does.
            Err(e @ object_store::Error::NotFound { .. }) => {
                let (s, p) = (store.clone(), path.clone());
                return Err(match wait_unless(cancel, &what, async move { s.get_range(&p, 0..1).await })? {
                    Err(get) if ["NoSuchBucket", "ContainerNotFound"].iter().any(|c| error_chain(&get).contains(c)) => {
                        object_error("reading", location, get)
                    }
                    _ => object_error("reading", location, e),
                });
            }
            Err(e) => return Err(object_error("reading", location, e)),
        };
        ObjectSource::over(store, location, meta.size, cancel)
    }

    /// The object `location` of `size` bytes in `store`, its ends read (at once: one request, or two).
    fn over(store: Bucket, location: &ObjectLocation, size: u64, cancel: &Cancel) -> Result<Self> {
        let path = location.path();
        let head = 0..size.min(HEAD_BYTES);
        let tail = size.saturating_sub(TAIL_BYTES).max(head.end)..size;
        let ranges: Vec<std::ops::Range<u64>> = [head, tail].into_iter().filter(|r| !r.is_empty()).collect();
        let (s, p, asked) = (store.clone(), path.clone(), ranges.clone());
        let read = wait_unless(cancel, &reading(location), async move { s.get_ranges(&p, &asked).await })?
            .map_err(|e| object_error("reading", location, e))?;
        let ends = ranges.iter().zip(read).map(|(r, bytes)| (r.start, Vec::from(bytes))).collect();
        Ok(ObjectSource { store, location: location.clone(), path, len: size, ends, cancel: cancel.clone() })
    }

    pub fn location(&self) -> &ObjectLocation {
        &self.location
    }
}

impl ArchiveSource for ObjectSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        if len == 0 {
            // An empty range is no valid request.
            return Ok(Cow::Borrowed(&[]));
        }
        let end = offset.saturating_add(len as u64);
        for (start, bytes) in &self.ends {
            if offset >= *start && end <= start + bytes.len() as u64 {
                let from = (offset - start) as usize;
                return Ok(Cow::Borrowed(&bytes[from..from + len]));
            }
        }
        let (store, path) = (self.store.clone(), self.path.clone());
        let range = offset..end;
        let bytes =
            wait_unless(&self.cancel, &reading(&self.location), async move { store.get_range(&path, range).await })
                .map_err(io::Error::other)?
                .map_err(|e| io::Error::other(object_error("reading", &self.location, e)))?;
        if bytes.len() != len {
            return Err(io::Error::other(format!(
                "`{}`: asked for {len} bytes at offset {offset}, got {}",
                self.location,
                bytes.len()
            )));
        }
        Ok(Cow::Owned(Vec::from(bytes)))
    }
}

/// What an interrupted read says was interrupted.
fn reading(location: &ObjectLocation) -> String {
    format!("reading `{location}`")
}

/// The first parts' size: the least S3 takes (10,000 parts of at least 5 MiB but the last). The size
/// doubles every thousand parts, so that an archive of terabytes fits while the first 5 GiB upload in parts
/// as small as a dump's memory can spare.
const PART_BYTES: usize = 5 << 20;
/// Parts doubled this often at most: parts stay at or under 640 MiB, and 10,000 of them hold 2.5 TiB.
const MAX_DOUBLINGS: usize = 7;
/// Parts uploading at once, beside the one being filled: two keep a link busy while the next fills (a
/// part takes a tenth of a second to S3 on a fast link), and bound what an upload holds to three parts,
/// 15 MiB for the first 5 GiB, however slow the link is.
const IN_FLIGHT_PARTS: usize = 2;

/// A multipart upload to one key, written through [`io::Write`]. [`complete`](Self::complete) makes the
/// object appear; dropped before that, the upload is aborted and the key is left as it was.
pub struct ObjectUpload {
    location: ObjectLocation,
    path: ObjectPath,
    /// The upload's creation, completion and abort: requests the endpoint must answer promptly.
    control: Uploads,
    /// The parts' uploads, each given the time a slow link needs to send it.
    sender: Uploads,
    /// The upload, until completed or aborted.
    id: Option<MultipartId>,
    /// The part being filled.
    buffer: Vec<u8>,
    /// Parts uploading, oldest first, with their sizes.
    in_flight: VecDeque<(usize, JoinHandle<object_store::Result<PartId>>)>,
    /// Parts uploaded, in order.
    sent: Vec<PartId>,
    parts: usize,
    /// Ends every wait for the endpoint: the dump's.
    cancel: Cancel,
    completed: bool,
}

impl ObjectUpload {
    /// Starts a multipart upload to `location`; `cancel` interrupts it, and every later wait for a part.
    pub fn start(location: &ObjectLocation, cancel: &Cancel) -> Result<Self> {
        let control = connect_uploads(location, Requests::Answered)?;
        let sender = connect_uploads(location, Requests::Parts)?;
        let (store, path) = (control.clone(), location.path());
        let id = wait_unless(cancel, &writing(location), async move { store.create_multipart(&path).await })?
            .map_err(|e| object_error("writing", location, e))?;
        Ok(ObjectUpload::new(location, control, sender, id, cancel))
    }

    fn new(location: &ObjectLocation, control: Uploads, sender: Uploads, id: MultipartId, cancel: &Cancel) -> Self {
        ObjectUpload {
            location: location.clone(),
            path: location.path(),
            control,
            sender,
            id: Some(id),
            buffer: Vec::new(),
            in_flight: VecDeque::new(),
            sent: Vec::new(),
            parts: 0,
            cancel: cancel.clone(),
            completed: false,
        }
    }

    /// Bytes of parts uploading now.
    #[cfg(test)]
    fn in_flight_bytes(&self) -> usize {
        self.in_flight.iter().map(|(n, _)| n).sum()
    }

    fn part_size(&self) -> usize {
        PART_BYTES << (self.parts / 1000).min(MAX_DOUBLINGS)
    }

    /// Sends the buffer as the next part, after waiting for room among the parts in flight.
    fn send_part(&mut self) -> Result<()> {
        let size = self.buffer.len();
        while self.in_flight.len() >= IN_FLIGHT_PARTS {
            self.wait_oldest()?;
        }
        let Some(id) = self.id.clone() else { return Err(self.stopped()) };
        let (store, path, index) = (self.sender.clone(), self.path.clone(), self.parts);
        let payload = PutPayload::from(std::mem::take(&mut self.buffer));
        let part = async move { store.put_part(&path, &id, index, payload).await };
        self.in_flight.push_back((size, runtime()?.spawn(part)));
        self.parts += 1;
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<()> {
        let Some((_, part)) = self.in_flight.pop_front() else { return Ok(()) };
        let abort = part.abort_handle();
        let waited = wait_unless(&self.cancel, &writing(&self.location), part);
        if waited.is_err() {
            // Interrupted: the part's request stops with the wait, as those still in flight do on drop.
            abort.abort();
        }
        match waited? {
            Ok(Ok(id)) => {
                self.sent.push(id);
                Ok(())
            }
            Ok(Err(e)) => Err(object_error("writing", &self.location, e)),
            Err(e) => {
                Err(Error::new(ErrorKind::Io, format!("writing `{}`: uploading a part failed: {e}", self.location)))
            }
        }
    }

    fn stopped(&self) -> Error {
        Error::new(ErrorKind::Io, format!("writing `{}`: the upload was already ended", self.location))
    }

    /// Sends what is buffered, waits for every part, and completes the upload: the object appears.
    pub fn complete(mut self) -> Result<()> {
        if !self.buffer.is_empty() || self.parts == 0 {
            self.send_part()?;
        }
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        let id = self.id.clone().ok_or_else(|| self.stopped())?;
        let (store, path, parts) = (self.control.clone(), self.path.clone(), std::mem::take(&mut self.sent));
        let completed = wait_unless(&self.cancel, &writing(&self.location), async move {
            store.complete_multipart(&path, &id, parts).await
        })?;
        // Failed, the upload is still aborted on drop: its parts do not linger.
        completed.map_err(|e| object_error("completing the upload of", &self.location, e))?;
        self.completed = true;
        Ok(())
    }
}

/// What an interrupted upload says was interrupted.
fn writing(location: &ObjectLocation) -> String {
    format!("writing `{location}`")
}

impl io::Write for ObjectUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.part_size() - self.buffer.len();
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(self.part_size());
        }
        let n = buf.len().min(room);
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == self.part_size() {
            self.send_part().map_err(io::Error::other)?;
        }
        Ok(n)
    }

    /// Parts go out when full (S3 refuses parts under 5 MiB but the last): there is nothing to flush.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ObjectUpload {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        for (_, part) in self.in_flight.drain(..) {
            part.abort();
        }
        if let Some(id) = self.id.take() {
            // Not cancellable: this is the interrupted dump's cleanup. Bounded: an endpoint that stopped
            // answering does not hold the interruption up.
            let (store, path) = (self.control.clone(), self.path.clone());
            let abort = async move { tokio::time::timeout(ABORT_WAIT, store.abort_multipart(&path, &id)).await };
            match wait(abort).map(|r| r.map_err(|_| ABORT_WAIT)) {
                Ok(Ok(Ok(()))) => tracing::info!("aborted the unfinished upload of `{}`", self.location),
                Ok(Err(waited)) => tracing::warn!(
                    "aborting the unfinished upload of `{}` failed (the endpoint did not answer within {waited:?}): its parts stay in the bucket until a lifecycle rule removes them; no object was created",
                    self.location
                ),
                Ok(Ok(Err(e))) => {
                    tracing::warn!(
                        "aborting the unfinished upload of `{}` failed ({}): its parts stay in the bucket until a lifecycle rule removes them; no object was created",
                        self.location,
                        error_chain(&e)
                    )
                }
                Err(e) => tracing::warn!("aborting the unfinished upload of `{}` failed: {e}", self.location),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls_and_leaves_paths_alone() {
        let l = ObjectLocation::parse("s3://bucket/dir/a.pgsafe").unwrap().unwrap();
        assert_eq!((l.bucket.as_str(), l.key.as_str()), ("bucket", "dir/a.pgsafe"));
        assert_eq!(l.to_string(), "s3://bucket/dir/a.pgsafe");
        assert_eq!(ObjectLocation::parse("backups/a.pgsafe").unwrap(), None);
        assert_eq!(ObjectLocation::parse("-").unwrap(), None);
        let folder = ObjectLocation::parse("s3://bucket/nightly/").unwrap_err().to_string();
        assert!(folder.contains("ends with `/`"), "{folder}");
    }

    #[test]
    fn refuses_urls_it_cannot_write() {
        for (url, says) in [
            ("gs://bucket/key", "`gs://` is not supported"),
            ("s3://bucket", "both a bucket and a key"),
            ("s3:///key", "both a bucket and a key"),
            ("s3://bucket/", "both a bucket and a key"),
            ("s3://bucket/a//b", "invalid key"),
        ] {
            let e = ObjectLocation::parse(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.to_string().contains(says), "{url}: {e}");
        }
    }

    use std::io::Write;

    use object_store::memory::InMemory;
    use object_store::throttle::{ThrottleConfig, ThrottledStore};

    /// A bucket in memory whose part uploads take 20 ms each, so that parts pile up in flight.
    fn slow_bucket() -> Arc<ThrottledStore<InMemory>> {
        let config = ThrottleConfig { wait_put_per_call: Duration::from_millis(20), ..ThrottleConfig::default() };
        Arc::new(ThrottledStore::new(InMemory::new(), config))
    }

    fn upload_to(store: &Arc<ThrottledStore<InMemory>>, location: &ObjectLocation) -> ObjectUpload {
        upload_cancelled_by(store, location, &Cancel::new())
    }

    fn upload_cancelled_by(
        store: &Arc<ThrottledStore<InMemory>>,
        location: &ObjectLocation,
        cancel: &Cancel,
    ) -> ObjectUpload {
        let (s, path) = (store.clone(), location.path());
        let id = wait(async move { s.create_multipart(&path).await }).unwrap().unwrap();
        ObjectUpload::new(location, store.clone(), store.clone(), id, cancel)
    }

    fn exists(store: &Arc<ThrottledStore<InMemory>>, location: &ObjectLocation) -> bool {
        let (store, path) = (store.clone(), location.path());
        wait(async move { store.head(&path).await }).unwrap().is_ok()
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Reads served from the ends fetched on open, and reads beyond them, give the object's bytes.
    #[test]
    fn an_objects_ends_are_read_on_open_and_every_range_reads_its_bytes() {
        for size in [0usize, 1, 1000, (HEAD_BYTES + TAIL_BYTES) as usize - 1, 3 << 20] {
            let store: Bucket = Arc::new(InMemory::new());
            let location = ObjectLocation { service: Service::S3, bucket: "b".into(), key: "a.pgsafe".into() };
            let bytes = sample(size);
            let (s, p, body) = (store.clone(), location.path(), bytes.clone());
            wait(async move { s.put(&p, body.into()).await }).unwrap().unwrap();
            let source = ObjectSource::over(store, &location, size as u64, &Cancel::new()).unwrap();
            let held: u64 = source.ends.iter().map(|(_, b)| b.len() as u64).sum();
            assert_eq!(held, (size as u64).min(HEAD_BYTES + TAIL_BYTES), "{size}");
            let n = size as u64;
            // The start, the end, and the middle (in neither end of a large object).
            let ranges = [(0, n.min(32)), (n - n.min(48), n.min(48)), (n / 2, (n - n / 2).min(4096))];
            for (offset, len) in ranges {
                let got = source.read_at(offset, len as usize).unwrap();
                assert_eq!(&got[..], &bytes[offset as usize..(offset + len) as usize], "{size}: {offset}+{len}");
            }
        }
    }

    #[test]
    fn an_upload_appears_only_once_complete_with_its_bytes_in_flight_bounded() {
        let store = slow_bucket();
        let location = ObjectLocation { service: Service::S3, bucket: "b".into(), key: "a.pgsafe".into() };
        let data = sample(50 << 20);
        let mut upload = upload_to(&store, &location);
        for piece in data.chunks(3 << 20) {
            upload.write_all(piece).unwrap();
            assert!(upload.in_flight.len() <= IN_FLIGHT_PARTS, "{} parts in flight", upload.in_flight.len());
            assert!(upload.in_flight_bytes() <= IN_FLIGHT_PARTS * PART_BYTES, "{} bytes", upload.in_flight_bytes());
            assert!(upload.buffer.len() < PART_BYTES);
        }
        assert!(upload.parts >= 6);
        assert!(!exists(&store, &location), "the object appears only at completion");
        upload.complete().unwrap();
        let (s, path) = (store.clone(), location.path());
        let stored = wait(async move { s.get(&path).await.unwrap().bytes().await }).unwrap().unwrap();
        assert_eq!(stored.len(), data.len());
        assert!(stored == data, "the object holds what was written");
    }

    #[test]
    fn an_upload_dropped_before_completion_leaves_no_object() {
        let store = slow_bucket();
        let location = ObjectLocation { service: Service::S3, bucket: "b".into(), key: "a.pgsafe".into() };
        let mut upload = upload_to(&store, &location);
        upload.write_all(&sample(20 << 20)).unwrap();
        drop(upload);
        assert!(!exists(&store, &location));
    }

    #[test]
    fn an_empty_upload_completes_as_an_empty_object() {
        let store = slow_bucket();
        let location = ObjectLocation { service: Service::S3, bucket: "b".into(), key: "empty".into() };
        upload_to(&store, &location).complete().unwrap();
        assert!(exists(&store, &location));
    }

    /// Cancels `cancel` from another thread after `after`.
    fn cancel_after(cancel: &Cancel, after: Duration) -> std::thread::JoinHandle<()> {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(after);
            cancel.cancel();
        })
    }

    /// A thread waiting for a request that never ends (an endpoint that never answers) is freed at once
    /// by a cancellation, and a cancelled operation starts no request.
    #[test]
    fn a_wait_for_a_request_that_never_ends_stops_when_cancelled() {
        let cancel = Cancel::new();
        let canceller = cancel_after(&cancel, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let e = wait_unless(&cancel, "reading `s3://b/k`", std::future::pending::<()>()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cancelled);
        assert_eq!(e.to_string(), "reading `s3://b/k` was interrupted");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        canceller.join().unwrap();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let again =
            wait_unless(&cancel, "reading", async move { flag.store(true, std::sync::atomic::Ordering::SeqCst) });
        assert_eq!(again.unwrap_err().kind(), ErrorKind::Cancelled);
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    /// A dump interrupted while its parts hang: the writer's wait for room ends at the cancellation, and
    /// the upload is aborted, no object created.
    #[test]
    fn an_upload_whose_parts_hang_stops_when_cancelled_and_leaves_no_object() {
        let config = ThrottleConfig { wait_put_per_call: Duration::from_secs(3600), ..ThrottleConfig::default() };
        let store = Arc::new(ThrottledStore::new(InMemory::new(), config));
        let location = ObjectLocation { service: Service::S3, bucket: "b".into(), key: "a.pgsafe".into() };
        let cancel = Cancel::new();
        let mut upload = upload_cancelled_by(&store, &location, &cancel);
        let canceller = cancel_after(&cancel, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let e = upload.write_all(&sample(50 << 20)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        let e = e.downcast::<Error>().unwrap();
        assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
        canceller.join().unwrap();
        drop(upload);
        assert!(!exists(&store, &location));
    }

    /// Reads of an object whose endpoint hangs stop when cancelled.
    #[test]
    fn a_read_that_hangs_stops_when_cancelled() {
        let config = ThrottleConfig { wait_get_per_call: Duration::from_secs(3600), ..ThrottleConfig::default() };
        let store: Bucket = Arc::new(ThrottledStore::new(InMemory::new(), config));
        let location = ObjectLocation { service: Service::S3, bucket: "b".into(), key: "a.pgsafe".into() };
        let (s, p) = (store.clone(), location.path());
        wait(async move { s.put(&p, sample(1000).into()).await }).unwrap().unwrap();
        let cancel = Cancel::new();
        let canceller = cancel_after(&cancel, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let e = ObjectSource::over(store, &location, 1000, &cancel).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        canceller.join().unwrap();
    }

    #[test]
    fn the_answer_timeout_bounds_the_retries_and_comes_from_the_environment_when_set() {
        assert_eq!(retry_window(ANSWER_TIMEOUT), RETRY_WINDOW);
        assert_eq!(retry_window(Duration::from_secs(1)), Duration::from_secs(2));
        let parts = timeouts(Requests::Parts, ANSWER_TIMEOUT);
        assert!(!parts.iter().any(|(k, _)| *k == ClientConfigKey::ReadTimeout), "a part's upload has no read timeout");
        let answered = timeouts(Requests::Answered, Duration::from_millis(1500));
        assert!(answered.contains(&(ClientConfigKey::ReadTimeout, "1500ms".into())), "{answered:?}");
    }

    #[test]
    fn parts_grow_so_that_ten_thousand_hold_terabytes() {
        let mut total = 0u64;
        for n in 0..10_000 {
            total += (PART_BYTES << (n / 1000).min(MAX_DOUBLINGS)) as u64;
        }
        assert!(total > 2 << 40, "{total}");
    }
}
