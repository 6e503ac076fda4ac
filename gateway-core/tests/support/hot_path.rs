//! The fakes and the request the hot-path measurements share (criterion bench and the
//! callgrind example): a plain proxy route whose upstream answers at once.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use gateway_core::ports::{
    AccessLog, Body, BodyError, Client, Clock, EdgeCache, Entropy, Fetch, FetchError, Limiter, Secrets,
    SignatureVerifier, Sleep, Store, StoreError, UnixMillis,
};
use http::{Request, Response};

pub struct FakeBody;
impl Body for FakeBody {
    fn empty() -> Self {
        FakeBody
    }
    fn from_bytes(_: Bytes) -> Self {
        FakeBody
    }
    fn is_known_empty(&self) -> bool {
        true
    }
    async fn collect(self, _: u64) -> Result<Bytes, BodyError> {
        Ok(Bytes::new())
    }
    fn limited(self, _: u64) -> Self {
        self
    }
    fn idle_timeout(self, _: std::time::Duration) -> Self {
        self
    }
}

pub struct Fakes;
impl Fetch for Fakes {
    type Body = FakeBody;
    async fn fetch(&self, _: Request<FakeBody>) -> Result<Response<FakeBody>, FetchError> {
        let mut response = Response::new(FakeBody);
        response.headers_mut().insert("content-type", "application/json".parse().unwrap());
        Ok(response)
    }
}
impl Clock for Fakes {
    fn now(&self) -> UnixMillis {
        1_795_314_861_000
    }
}
impl Sleep for Fakes {
    async fn sleep(&self, _: Duration) {
        std::future::pending::<()>().await
    }
}
impl Entropy for Fakes {
    fn fill(&self, buf: &mut [u8]) {
        buf.fill(7);
    }
}
impl AccessLog for Fakes {
    fn log(&self, line: &str) {
        std::hint::black_box(line);
    }
}

impl Secrets for Fakes {
    fn secret(&self, _: &str) -> Option<String> {
        None
    }
}
impl Store for Fakes {
    async fn get(&self, _: &str) -> Result<Option<Bytes>, StoreError> {
        Err(StoreError::Unavailable)
    }
    async fn put(&self, _: &str, _: Bytes) -> Result<(), StoreError> {
        Err(StoreError::Unavailable)
    }
}

impl SignatureVerifier for Fakes {}

impl Limiter for Fakes {
    async fn limit(
        &self,
        _: &str,
        _: &gateway_core::ratelimit::LimitRequest,
    ) -> Result<gateway_core::ratelimit::decide::Decision, StoreError> {
        Err(StoreError::Unavailable)
    }
}

impl EdgeCache for Fakes {}

/// The client the runtime reports.
pub const CLIENT: Client =
    Client { ip: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9))), https: true };

/// A typical API request: GET with a query string, a few headers and a trace context.
pub fn plain_proxy_request() -> Request<FakeBody> {
    Request::builder()
        .method("GET")
        .uri("https://api.example.com/svc3/items/12345?expand=parts")
        .header("accept", "application/json")
        .header("user-agent", "bench/1.0")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .body(FakeBody)
        .unwrap()
}

/// The same request as a browser's `fetch()` from a single-page app sends it: the 12 headers
/// `scripts/bench` sends on Workers, so the core's per-header work shows.
pub fn browser_proxy_request() -> Request<FakeBody> {
    let mut request = plain_proxy_request();
    for (name, value) in [
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("accept-language", "en-US,en;q=0.9"),
        ("origin", "https://app.example.com"),
        ("referer", "https://app.example.com/dashboard"),
        ("sec-ch-ua", "\"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\""),
        ("sec-ch-ua-mobile", "?0"),
        ("sec-ch-ua-platform", "\"Linux\""),
        ("sec-fetch-dest", "empty"),
        ("sec-fetch-mode", "cors"),
        ("sec-fetch-site", "same-site"),
    ] {
        request.headers_mut().insert(name, http::HeaderValue::from_static(value));
    }
    request.headers_mut().insert(
        "user-agent",
        http::HeaderValue::from_static(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        ),
    );
    request
}
