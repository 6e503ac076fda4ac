//! `edgegate explain`: one request through the real core (the same compiled `Gateway` the
//! adapters run) with ports that never touch the network: a fetch that records what the
//! gateway sends and answers with a canned response, an in-memory store and limiter, the
//! clock of `--now`. It prints the route taken, every outbound request exactly as it would
//! leave, and the answer the client would get.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use gateway_core::ports::{
    AccessLog, BodyError, ByteStream, Client, Clock, EdgeCache, Entropy, Fetch, FetchError, Limiter, Secrets,
    SignatureVerifier, Sleep, Store, StoreError, StreamBody, UnixMillis,
};
use gateway_core::ratelimit::decide::{decide, Decision, State};
use gateway_core::ratelimit::LimitRequest;
use gateway_core::Gateway;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};

pub const USAGE: &str = "\
usage: edgegate explain [--routes FILE] METHOD URL [-H 'Name: value']... [--ip ADDR] [--body FILE|-]
                        [--secret NAME=VALUE]... [--now RFC3339|UNIX_MS] [--upstream-status N]
                        [--upstream-body TEXT] [--json]

Runs one request through the gateway compiled from the routes file, without network: every
outbound request is recorded and answered with --upstream-status (default 200) and
--upstream-body (default {}). Prints the route, the outbound requests and the client's answer.
Exit status: 0 when the request reaches an upstream, 1 when the gateway answers it itself,
2 on a usage error.";

/// What `explain` was asked.
#[derive(Debug)]
pub struct Ask {
    pub routes: Option<String>,
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    pub ip: IpAddr,
    pub body: Bytes,
    pub secrets: HashMap<String, String>,
    pub now: UnixMillis,
    pub upstream_status: StatusCode,
    pub upstream_body: Bytes,
    pub json: bool,
}

/// Reads the arguments after `explain`.
pub fn parse(args: &[String], now: UnixMillis) -> Result<Ask, String> {
    let mut positional = Vec::new();
    let mut ask = Ask {
        routes: None,
        method: Method::GET,
        url: String::new(),
        headers: HeaderMap::new(),
        ip: IpAddr::from([203, 0, 113, 1]),
        body: Bytes::new(),
        secrets: HashMap::new(),
        now,
        upstream_status: StatusCode::OK,
        upstream_body: Bytes::from_static(b"{}"),
        json: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--routes" => ask.routes = Some(value("--routes")?),
            "-H" | "--header" => {
                let header = value("-H")?;
                let (name, val) =
                    header.split_once(':').ok_or_else(|| format!("header {header:?} is not 'Name: value'"))?;
                let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| format!("header name: {e}"))?;
                let val = HeaderValue::from_str(val.trim()).map_err(|e| format!("header value: {e}"))?;
                ask.headers.append(name, val);
            }
            "--ip" => ask.ip = value("--ip")?.parse().map_err(|e| format!("--ip: {e}"))?,
            "--body" => {
                let source = value("--body")?;
                let bytes = if source == "-" {
                    let mut all = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut all).map_err(|e| format!("stdin: {e}"))?;
                    all
                } else {
                    std::fs::read(&source).map_err(|e| format!("{source}: {e}"))?
                };
                ask.body = Bytes::from(bytes);
            }
            "--secret" => {
                let pair = value("--secret")?;
                let (name, secret) =
                    pair.split_once('=').ok_or_else(|| format!("--secret {pair:?} is not NAME=VALUE"))?;
                ask.secrets.insert(name.to_owned(), secret.to_owned());
            }
            "--now" => ask.now = parse_now(&value("--now")?)?,
            "--upstream-status" => {
                ask.upstream_status = value("--upstream-status")?
                    .parse::<u16>()
                    .ok()
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .ok_or("--upstream-status takes an HTTP status")?;
            }
            "--upstream-body" => ask.upstream_body = Bytes::from(value("--upstream-body")?),
            "--json" => ask.json = true,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ => positional.push(arg.clone()),
        }
    }
    let [method, url] = positional.as_slice() else { return Err("give METHOD and URL".into()) };
    ask.method = Method::from_bytes(method.as_bytes()).map_err(|e| format!("method: {e}"))?;
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(format!("URL {url:?} must be absolute (https://api.example.com/path)"));
    }
    ask.url = url.clone();
    Ok(ask)
}

/// `--now`: an RFC 3339 time (`2026-11-29T12:00:00Z`, `2026-11-29T13:00:00.250+01:00`) or
/// Unix milliseconds.
pub fn parse_now(text: &str) -> Result<UnixMillis, String> {
    if let Ok(millis) = text.parse::<UnixMillis>() {
        return Ok(millis);
    }
    rfc3339(text)
        .ok_or_else(|| format!("--now {text:?} is neither RFC 3339 (2026-11-29T12:00:00Z) nor Unix milliseconds"))
}

fn rfc3339(text: &str) -> Option<UnixMillis> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    let date_time_separator = matches!(text.as_bytes().get(10), Some(b'T' | b't' | b' '));
    if !date_time_separator || separators.iter().any(|(at, sep)| text.as_bytes().get(*at) != Some(sep)) {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let in_range = (1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60 && second < 61;
    let mut rest = text.get(19..)?;
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let padded = format!("{:0<3}", fraction.get(..digits.min(3))?);
        millis = if digits == 0 { return None } else { padded.parse::<i64>().ok()? };
        rest = fraction.get(digits..)?;
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        offset => {
            let sign = match offset.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (hours, minutes) = offset.get(1..)?.split_once(':')?;
            sign * (hours.parse::<i64>().ok()? * 60 + minutes.parse::<i64>().ok()?)
        }
    };
    if !in_range {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    UnixMillis::try_from(seconds * 1000 + millis).ok()
}

/// What happened to the request.
#[derive(Debug)]
pub struct Explained {
    /// The route's id and position in the file, or the problem the gateway answered instead.
    pub route: Result<(String, usize), String>,
    /// On a 404 or 405: the routes that miss the request by one condition, and which.
    pub near_misses: Vec<(String, usize, String)>,
    /// The headers the client sent, to mark what the gateway added, changed and removed.
    pub client_headers: Vec<(String, String)>,
    /// What the route asks and promises, as compiled (`Gateway::route_summary`).
    pub summary: Vec<(&'static str, String)>,
    /// Each phase's decision and why, as the core reported it (`AccessLog::explain`).
    pub steps: Vec<(&'static str, String)>,
    /// Key sets the gateway would fetch (explain never does: offline, they are unavailable).
    pub key_fetches: Vec<String>,
    pub outbound: Vec<Recorded>,
    pub response: Recorded,
}

/// A request or response as it crossed the gateway's edge.
#[derive(Debug)]
pub struct Recorded {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Explained {
    /// Whether the request reached an upstream (an outbound request other than key fetches).
    pub fn reached_upstream(&self) -> bool {
        self.route.is_ok() && !self.outbound.is_empty()
    }

    pub fn human(&self) -> String {
        let mut out = String::new();
        match &self.route {
            Ok((id, index)) => {
                let _ = writeln!(out, "route     {id} (routes[{index}])");
                for (aspect, text) in &self.summary {
                    let _ = writeln!(out, "          {aspect}: {text}");
                }
            }
            Err(problem) => {
                let _ = writeln!(out, "route     none: {problem}");
                for (id, index, reason) in &self.near_misses {
                    let _ = writeln!(out, "          near {id} (routes[{index}]): {reason}");
                }
            }
        }
        let mut label = "why      ";
        for (step, text) in &self.steps {
            let _ = writeln!(out, "{label} {step:<11}{text}");
            label = "         ";
        }
        for url in &self.key_fetches {
            let _ = writeln!(
                out,
                "keys      would fetch {url} (explain stays offline: give the key inline, or --secret for a shared one)"
            );
        }
        for (i, request) in self.outbound.iter().enumerate() {
            let _ = writeln!(out, "outbound  #{} {}   (+ added, ~ changed, - removed)", i + 1, request.start);
            write_marked(&mut out, request, &self.client_headers);
        }
        if self.outbound.is_empty() {
            let _ = writeln!(out, "outbound  none: the gateway answered itself");
        }
        let _ = writeln!(out, "response  {}", self.response.start);
        write_message(&mut out, &self.response);
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let message = |m: &Recorded| {
            serde_json::json!({
                "start": m.start,
                "headers": m.headers.iter().map(|(n, v)| serde_json::json!([n, v])).collect::<Vec<_>>(),
                "body": String::from_utf8_lossy(&m.body),
            })
        };
        serde_json::json!({
            "route": match &self.route {
                Ok((id, index)) => serde_json::json!({
                    "id": id,
                    "index": index,
                    "summary": self.summary.iter().map(|(aspect, text)| (aspect.to_string(), serde_json::Value::from(text.as_str()))).collect::<serde_json::Map<_, _>>(),
                }),
                Err(problem) => serde_json::json!({
                    "none": problem,
                    "near_misses": self.near_misses.iter().map(|(id, index, reason)| serde_json::json!({"id": id, "index": index, "reason": reason})).collect::<Vec<_>>(),
                }),
            },
            "steps": self.steps.iter().map(|(step, text)| serde_json::json!({"step": step, "why": text})).collect::<Vec<_>>(),
            "key_fetches": self.key_fetches,
            "outbound": self.outbound.iter().map(message).collect::<Vec<_>>(),
            "response": message(&self.response),
        })
    }
}

/// An outbound request's headers, each marked against what the client sent: `+` added by the
/// gateway, `~` changed, none when passed as sent; then `-` for what the client sent and the
/// upstream does not get.
fn write_marked(out: &mut String, message: &Recorded, client: &[(String, String)]) {
    for (name, value) in &message.headers {
        let sent: Vec<&str> = client.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        let mark = if sent.is_empty() {
            '+'
        } else if sent.contains(&value.as_str()) {
            ' '
        } else {
            '~'
        };
        let _ = writeln!(out, "        {mark} {name}: {value}");
    }
    let mut removed: Vec<&str> = client
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "host" && !message.headers.iter().any(|(m, _)| m == n))
        .collect();
    removed.dedup();
    for name in removed {
        let _ = writeln!(out, "        - {name}");
    }
    write_body(out, message);
}

/// The human report with ANSI colour, for a terminal: section names bold, added headers green,
/// changed yellow, removed red, near misses yellow.
pub fn coloured(report: &str) -> String {
    let mut out = String::with_capacity(report.len() + 256);
    for line in report.lines() {
        let paint = |code: &str| format!("\x1b[{code}m{line}\x1b[0m");
        let painted = if line.starts_with("        + ") {
            paint("32")
        } else if line.starts_with("        ~ ") || line.starts_with("          near ") {
            paint("33")
        } else if line.starts_with("        - ") {
            paint("31")
        } else if let Some((head, rest)) = line.split_once(' ').filter(|(head, _)| !head.is_empty()) {
            format!("\x1b[1m{head}\x1b[0m {rest}")
        } else {
            line.to_owned()
        };
        out.push_str(&painted);
        out.push('\n');
    }
    out
}

fn write_body(out: &mut String, message: &Recorded) {
    if !message.body.is_empty() {
        let text = String::from_utf8_lossy(&message.body);
        let shown: String = text.chars().take(2000).collect();
        let more = if text.chars().count() > 2000 { " …" } else { "" };
        let _ = writeln!(out, "          ({} bytes) {shown}{more}", message.body.len());
    }
}

fn write_message(out: &mut String, message: &Recorded) {
    for (name, value) in &message.headers {
        let _ = writeln!(out, "          {name}: {value}");
    }
    write_body(out, message);
}

/// Runs the request through the core.
pub fn explain(gateway: &Gateway, ask: &Ask) -> Result<Explained, String> {
    let uri: http::Uri = ask.url.parse().map_err(|e| format!("URL: {e}"))?;
    let mut request = Request::new(if ask.body.is_empty() { Body::Empty } else { Body::Bytes(ask.body.clone()) });
    *request.method_mut() = ask.method.clone();
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = ask.headers.clone();
    if !ask.body.is_empty() {
        // As a client sending a file does: the length is declared, so the route's limit applies.
        request.headers_mut().entry(http::header::CONTENT_LENGTH).or_insert(HeaderValue::from(ask.body.len()));
    }
    if let Some(authority) = uri.authority() {
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            request.headers_mut().entry(http::header::HOST).or_insert(host);
        }
    }
    let position = |id: &str| gateway.route_ids().position(|r| r == id).unwrap_or_default();
    let found = gateway.find_route(&ask.method, uri.host(), &ask.headers, uri.path());
    let near_misses = match found {
        Ok(_) => Vec::new(),
        Err(_) => gateway
            .near_misses(&ask.method, uri.host(), &ask.headers, uri.path())
            .into_iter()
            .flat_map(|(id, reasons)| reasons.into_iter().map(move |reason| (id.to_owned(), position(id), reason)))
            .collect(),
    };
    let route = found.map(|id| (id.to_owned(), gateway.route_ids().position(|r| r == id).unwrap_or_default())).map_err(
        |kind| match kind {
            gateway_core::ProblemKind::MethodNotAllowed => "the path matches, the method does not (405)".to_owned(),
            _ => "no route matches (404)".to_owned(),
        },
    );
    let platform = Recorder::new(ask);
    let client = Client { ip: Some(ask.ip), https: uri.scheme_str() == Some("https") };
    let state = gateway_core::IsolateState::new();
    let response = block_on(gateway_core::handle(gateway, &state, &platform, request, &client));
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Bytes(bytes) => bytes,
        Body::Stream(Memory(bytes, _)) => bytes,
    };
    let summary = route.as_ref().ok().and_then(|(id, _)| gateway.route_summary(id)).unwrap_or_default();
    Ok(Explained {
        steps: platform.steps.into_inner(),
        key_fetches: platform.key_fetches.into_inner(),
        summary,
        route,
        near_misses,
        client_headers: pairs(&ask.headers),
        outbound: platform.sent.into_inner(),
        response: Recorded { start: parts.status.to_string(), headers: pairs(&parts.headers), body },
    })
}

fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers.iter().map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

/// Bytes held in memory, as the one "stream" these ports have, with the limit the gateway
/// set on it ([`ByteStream::limited`]); the recorder refuses to send it past that limit.
#[derive(Debug)]
pub struct Memory(Bytes, Option<u64>);

impl ByteStream for Memory {
    async fn collect(self, limit: u64) -> Result<Bytes, BodyError> {
        if self.0.len() as u64 > limit {
            return Err(BodyError::TooLarge);
        }
        Ok(self.0)
    }
    fn limited(self, limit: u64) -> Self {
        Self(self.0, Some(limit))
    }
    /// Bytes in memory never stall.
    fn idle_timeout(self, _: std::time::Duration) -> Self {
        self
    }
}

type Body = StreamBody<Memory>;

/// The ports: a recording fetch, the given clock and secrets, in-memory store and limiter.
struct Recorder<'a> {
    ask: &'a Ask,
    sent: RefCell<Vec<Recorded>>,
    steps: RefCell<Vec<(&'static str, String)>>,
    /// The core announced a key-set fetch: the next fetch is that one.
    key_fetch_next: Cell<bool>,
    key_fetches: RefCell<Vec<String>>,
    clock: Cell<UnixMillis>,
    store: RefCell<HashMap<String, Bytes>>,
    limits: RefCell<HashMap<String, State>>,
}

impl<'a> Recorder<'a> {
    fn new(ask: &'a Ask) -> Self {
        Self {
            ask,
            sent: RefCell::new(Vec::new()),
            steps: RefCell::new(Vec::new()),
            key_fetch_next: Cell::new(false),
            key_fetches: RefCell::new(Vec::new()),
            clock: Cell::new(ask.now),
            store: RefCell::new(HashMap::new()),
            limits: RefCell::new(HashMap::new()),
        }
    }
}

impl Fetch for Recorder<'_> {
    type Body = Body;
    async fn fetch(&self, request: Request<Body>) -> Result<Response<Body>, FetchError> {
        let (parts, body) = request.into_parts();
        if self.key_fetch_next.replace(false) {
            self.key_fetches.borrow_mut().push(parts.uri.to_string());
            return Err(FetchError::Unreachable("explain does not fetch key sets".into()));
        }
        let body = match body {
            Body::Empty => Bytes::new(),
            Body::Stream(Memory(bytes, Some(limit))) if bytes.len() as u64 > limit => {
                return Err(FetchError::BodyTooLarge)
            }
            Body::Bytes(bytes) | Body::Stream(Memory(bytes, _)) => bytes,
        };
        self.sent.borrow_mut().push(Recorded {
            start: format!("{} {}", parts.method, parts.uri),
            headers: pairs(&parts.headers),
            body,
        });
        let mut response = Response::new(Body::Bytes(self.ask.upstream_body.clone()));
        *response.status_mut() = self.ask.upstream_status;
        response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(response)
    }
}

impl Clock for Recorder<'_> {
    fn now(&self) -> UnixMillis {
        self.clock.get()
    }
}

impl Sleep for Recorder<'_> {
    /// Time passes at once: a timeout raced against the recorded fetch loses, as a real one
    /// would against an upstream that answers.
    async fn sleep(&self, duration: Duration) {
        let mut polled = false;
        std::future::poll_fn(|cx| {
            if polled {
                return Poll::Ready(());
            }
            polled = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
        self.clock.set(self.clock.get().saturating_add(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)));
    }
}

impl Entropy for Recorder<'_> {
    fn fill(&self, buf: &mut [u8]) {
        // Fixed bytes: two explains of one request print the same ids.
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
    }
}

impl AccessLog for Recorder<'_> {
    fn log(&self, _line: &str) {}

    const EXPLAINS: bool = true;

    fn explain(&self, step: &'static str, text: &str) {
        if step == "keys" {
            self.key_fetch_next.set(true);
        } else {
            self.steps.borrow_mut().push((step, text.to_owned()));
        }
    }
}

impl Secrets for Recorder<'_> {
    fn secret(&self, name: &str) -> Option<String> {
        self.ask.secrets.get(name).cloned()
    }
}

impl Store for Recorder<'_> {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.store.borrow().get(key).cloned())
    }
    async fn put(&self, key: &str, value: Bytes) -> Result<(), StoreError> {
        self.store.borrow_mut().insert(key.to_owned(), value);
        Ok(())
    }
}

/// Signatures are checked by the core.
impl SignatureVerifier for Recorder<'_> {}

impl Limiter for Recorder<'_> {
    async fn limit(&self, key: &str, request: &LimitRequest) -> Result<Decision, StoreError> {
        let mut limits = self.limits.borrow_mut();
        let (decision, state) = decide(&request.rules, limits.get(key), request.now, request.cost);
        limits.insert(key.to_owned(), state);
        Ok(decision)
    }
}

/// No cache: cacheable requests are explained as misses.
impl EdgeCache for Recorder<'_> {}

/// Polls a future to completion on this thread (the core's futures only wait on these ports).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_rfc3339_or_unix_millis() {
        for (text, expected) in [
            ("1795314861123", Some(1_795_314_861_123)),
            ("2026-11-22T02:34:21.123Z", Some(1_795_314_861_123)),
            ("2026-11-22T03:34:21.123+01:00", Some(1_795_314_861_123)),
            ("2026-11-21T21:34:21.1-05:00", Some(1_795_314_861_100)),
            ("2000-02-29T00:00:00Z", Some(951_782_400_000)),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2026-13-01T00:00:00Z", None),
            ("2026-11-22 02:34:21", None),
            ("2026-11-22T02:34:21.Z", None),
            ("yesterday", None),
        ] {
            assert_eq!(super::parse_now(text).ok(), expected, "{text}");
        }
    }

    #[test]
    fn colour_marks_sections_and_header_changes() {
        let report = "route     users-get (routes[1])\n        + x-request-id: 1\n        ~ x-forwarded-for: 1.2.3.4\n        - cookie\n          accept: */*\n";
        let coloured = super::coloured(report);
        let lines: Vec<&str> = coloured.lines().collect();
        assert_eq!(lines[0], "\x1b[1mroute\x1b[0m     users-get (routes[1])");
        assert_eq!(lines[1], "\x1b[32m        + x-request-id: 1\x1b[0m");
        assert_eq!(lines[2], "\x1b[33m        ~ x-forwarded-for: 1.2.3.4\x1b[0m");
        assert_eq!(lines[3], "\x1b[31m        - cookie\x1b[0m");
        assert_eq!(lines[4], "          accept: */*", "an unchanged header stays plain");
    }
}
