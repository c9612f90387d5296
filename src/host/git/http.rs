//! Smart HTTP(S) for `gix` over CoreOps's own `reqwest` client (rustls with `ring`, from
//! [`crate::host::fetch::client_builder`]).
//!
//! `gix`'s built-in `reqwest` backend builds its client itself and takes no CA bundle, so
//! CoreOps implements `gix`'s [`Http`] trait: the client trusts the system's CAs plus the
//! remote's `ca_file`, and the access token is sent as the basic-auth password of every
//! request (never over plain `http://`: `gix` refuses to). The git protocol itself (handshake,
//! ref listing, negotiation, pack) stays `gix`'s.
//!
//! A request goes out when its answer is first read: a POST body is written in full first (a
//! fetch's requests are small), then the status is checked. Statuses reach `gix` as I/O errors of
//! the kinds it expects: 401 and 403 as `PermissionDenied` (so it asks for credentials, and
//! CoreOps has none to give beyond the token), 404 as `NotFound`. Redirects are followed (at most
//! [`MAX_REDIRECTS`], never from HTTPS to HTTP), and the new base URL is handed back to `gix`.

use std::io::{self, BufRead, BufReader, Cursor, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use gix::protocol::transport::client::blocking_io::http::{self, GetResponse, Http, PostBodyDataKind, PostResponse};

/// How long connecting (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one request may take, answer included (a first fetch of a large repository too).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Redirects followed for one request.
pub const MAX_REDIRECTS: usize = 10;

/// The HTTP client of one fetch.
#[derive(Debug)]
pub struct Client {
    client: reqwest::blocking::Client,
    /// The base URL after a redirect, shared with the requests that learn it.
    redirected_base: Arc<Mutex<Option<String>>>,
}

impl Client {
    /// A client trusting the system's CAs and `extra_cas` (PEM certificates).
    pub fn new(extra_cas: Vec<reqwest::Certificate>) -> Result<Client, String> {
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            let downgrade =
                attempt.previous().last().is_some_and(|p| p.scheme() == "https") && attempt.url().scheme() != "https";
            if downgrade {
                attempt.error("refusing a redirect from https to http")
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else {
                attempt.follow()
            }
        });
        let mut builder = crate::host::fetch::client_builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(policy);
        if !extra_cas.is_empty() {
            builder = builder.tls_certs_merge(extra_cas);
        }
        let client =
            builder.build().map_err(|e| format!("setting up HTTPS: {}", crate::host::fetch::with_causes(&e)))?;
        Ok(Client { client, redirected_base: Arc::default() })
    }

    fn exchange(
        &mut self,
        method: reqwest::Method,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Arc<Exchange> {
        // Credentials come as a header from gix; reqwest would send a URL's own as well.
        let mut request = match reqwest::Url::parse(url) {
            Ok(mut parsed) => {
                parsed.set_username("").ok();
                parsed.set_password(None).ok();
                self.client.request(method, parsed)
            }
            Err(_) => self.client.request(method, url),
        };
        for line in headers {
            if let Some((name, value)) = line.as_ref().split_once(':') {
                request = request.header(name.trim(), value.trim());
            }
        }
        let tail = url.strip_prefix(base_url).unwrap_or_default().to_string();
        Arc::new(Exchange {
            state: Mutex::new(State::Pending { request, body: Vec::new() }),
            tail,
            redirected_base: self.redirected_base.clone(),
        })
    }
}

impl Http for Client {
    type Headers = Headers;
    type ResponseBody = Body;
    type PostBody = PostBody;

    fn get(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<GetResponse<Headers, Body>, http::Error> {
        let exchange = self.exchange(reqwest::Method::GET, url, base_url, headers);
        // Sent now: gix asks for the redirected base URL before it reads the answer's headers.
        exchange.answer();
        Ok(GetResponse { headers: Headers::of(&exchange), body: Body::of(&exchange) })
    }

    fn post(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
        _body: PostBodyDataKind,
    ) -> Result<PostResponse<Headers, Body, PostBody>, http::Error> {
        let exchange = self.exchange(reqwest::Method::POST, url, base_url, headers);
        Ok(PostResponse {
            post_body: PostBody(exchange.clone()),
            headers: Headers::of(&exchange),
            body: Body::of(&exchange),
        })
    }

    /// `gix`'s options from git's `http.*` settings are not used: the client is CoreOps's.
    fn configure(&mut self, _config: &dyn std::any::Any) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }

    fn redirected_base_url(&self) -> Option<String> {
        lock(&self.redirected_base).clone()
    }
}

/// One request and its answer, shared by the body written and the headers and body read.
#[derive(Debug)]
pub struct Exchange {
    state: Mutex<State>,
    /// The request URL past the base URL (`info/refs?service=…`), to find a redirect's base.
    tail: String,
    redirected_base: Arc<Mutex<Option<String>>>,
}

#[derive(Debug)]
enum State {
    Pending { request: reqwest::blocking::RequestBuilder, body: Vec<u8> },
    Answered { headers: Option<Vec<u8>>, response: Option<reqwest::blocking::Response> },
    Failed { kind: io::ErrorKind, message: String },
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Exchange {
    /// Sends the request unless it was sent.
    fn answer(&self) {
        let mut state = lock(&self.state);
        if !matches!(*state, State::Pending { .. }) {
            return;
        }
        let sending = State::Failed { kind: io::ErrorKind::Other, message: "the request was not sent".into() };
        *state = match std::mem::replace(&mut *state, sending) {
            State::Pending { request, body } => match request.body(body).send() {
                Ok(response) => self.answered(response),
                Err(e) => {
                    State::Failed { kind: error_kind(&e), message: crate::host::fetch::with_causes(&e.without_url()) }
                }
            },
            other => other,
        };
    }

    fn answered(&self, response: reqwest::blocking::Response) -> State {
        let status = response.status();
        if !status.is_success() {
            let kind = match status.as_u16() {
                401 | 403 => io::ErrorKind::PermissionDenied,
                404 => io::ErrorKind::NotFound,
                _ if status.is_server_error() => io::ErrorKind::ConnectionAborted,
                _ => io::ErrorKind::Other,
            };
            return State::Failed { kind, message: format!("the server answered HTTP {status}") };
        }
        let url = response.url().as_str();
        if let Some(base) = url.strip_suffix(&self.tail).filter(|_| !self.tail.is_empty()) {
            *lock(&self.redirected_base) = Some(base.to_string());
        }
        let mut headers = Vec::new();
        for (name, value) in response.headers() {
            headers.extend_from_slice(name.as_str().as_bytes());
            headers.extend_from_slice(b": ");
            headers.extend_from_slice(value.as_bytes());
            headers.push(b'\n');
        }
        State::Answered { headers: Some(headers), response: Some(response) }
    }

    fn take_headers(&self) -> io::Result<Vec<u8>> {
        self.answer();
        match &mut *lock(&self.state) {
            State::Answered { headers, .. } => Ok(headers.take().unwrap_or_default()),
            State::Failed { kind, message } => Err(io::Error::new(*kind, message.clone())),
            State::Pending { .. } => Err(io::Error::other("the request was not sent")),
        }
    }

    fn take_response(&self) -> io::Result<Option<reqwest::blocking::Response>> {
        self.answer();
        match &mut *lock(&self.state) {
            State::Answered { response, .. } => Ok(response.take()),
            State::Failed { kind, message } => Err(io::Error::new(*kind, message.clone())),
            State::Pending { .. } => Err(io::Error::other("the request was not sent")),
        }
    }
}

/// The I/O error kind `gix` acts on for a failed request.
fn error_kind(e: &reqwest::Error) -> io::ErrorKind {
    if e.is_timeout() {
        io::ErrorKind::TimedOut
    } else if e.is_connect() {
        io::ErrorKind::ConnectionRefused
    } else {
        io::ErrorKind::Other
    }
}

/// The body of a POST, collected until the answer is read.
#[derive(Debug)]
pub struct PostBody(Arc<Exchange>);

impl Write for PostBody {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match &mut *lock(&self.0.state) {
            State::Pending { body, .. } => {
                body.extend_from_slice(bytes);
                Ok(bytes.len())
            }
            _ => Err(io::Error::other("the request was already sent")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The answer's headers, one `name: value` line each; reading them sends the request.
#[derive(Debug)]
pub struct Headers {
    exchange: Arc<Exchange>,
    lines: Option<Cursor<Vec<u8>>>,
}

impl Headers {
    fn of(exchange: &Arc<Exchange>) -> Headers {
        Headers { exchange: exchange.clone(), lines: None }
    }
}

impl Read for Headers {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.fill_buf()?.read(buf)?;
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Headers {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.lines.is_none() {
            self.lines = Some(Cursor::new(self.exchange.take_headers()?));
        }
        self.lines.as_mut().map_or(Ok(&[][..]), |lines| lines.fill_buf())
    }

    fn consume(&mut self, amount: usize) {
        if let Some(lines) = &mut self.lines {
            lines.consume(amount);
        }
    }
}

/// The answer's body; reading it sends the request.
pub struct Body {
    exchange: Arc<Exchange>,
    reader: Option<BufReader<Box<dyn Read + Send>>>,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body").field("exchange", &self.exchange).finish_non_exhaustive()
    }
}

impl Body {
    fn of(exchange: &Arc<Exchange>) -> Body {
        Body { exchange: exchange.clone(), reader: None }
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.fill_buf()?.read(buf)?;
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Body {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.reader.is_none() {
            let source: Box<dyn Read + Send> = match self.exchange.take_response()? {
                Some(response) => Box::new(response),
                None => Box::new(io::empty()),
            };
            self.reader = Some(BufReader::new(source));
        }
        self.reader.as_mut().map_or(Ok(&[][..]), |reader| reader.fill_buf())
    }

    fn consume(&mut self, amount: usize) {
        if let Some(reader) = &mut self.reader {
            reader.consume(amount);
        }
    }
}
