//! Fermyon Spin adapter (spin-sdk 5.2, WASIp2): wasi-http requests in, gateway-core in the
//! middle, a streamed wasi-http response out. Bodies stay wasi streams unless a policy reads them.
#![allow(async_fn_in_trait)]
// `#[http_component]` expands to the unsafe component-model export glue.
#![allow(unsafe_code)]

use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use gateway_core::ports::{
    AccessLog, BodyError, ByteStream, Client, Clock, EdgeCache, Entropy, Fetch, FetchError, LimitedBuffer, Limiter,
    Secrets, SignatureVerifier, Sleep, Store, StoreError, StreamBody, UnixMillis,
};
use gateway_core::runtime::{header_map, request_url, Runtime};
use gateway_core::{problem, Gateway, IsolateState, ProblemKind};
use http::{HeaderMap, Request, Response};
use spin_sdk::http::{
    ErrorCode, Fields, IncomingRequest, IncomingResponse, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use spin_sdk::http_component;
use wasi::io::streams::{OutputStream, StreamError};

const ROUTES: &str = include_str!(concat!(env!("OUT_DIR"), "/routes.json"));
/// The OpenAPI document `openapi.path` serves, made by the build script (empty if none).
const OPENAPI: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openapi.json"));

/// The gateway compiled from [`ROUTES`], once per instance.
///
/// Spin makes a fresh instance for every request, so without more this compiles the file for
/// every request. `scripts/build-spin.sh` pre-initializes the component (wasmtime's wizer calls
/// [`wizer-initialize`](Preinit) at build time and writes the memory it leaves as the
/// component's data), so a deployed instance starts with the gateway already compiled and this
/// cell already full. `None` when the file does not compile, which the build has ruled out.
fn gateway() -> Option<&'static Gateway> {
    thread_local! {
        static GATEWAY: std::cell::OnceCell<Option<&'static Gateway>> = const { std::cell::OnceCell::new() };
    }
    // Leaked on purpose: the instance lives for one request, and the snapshot must hold it.
    GATEWAY.with(|cell| {
        *cell.get_or_init(|| {
            let gateway = Gateway::from_json(ROUTES).ok()?.with_openapi_document(Bytes::from_static(OPENAPI));
            Some(&*Box::leak(Box::new(gateway)))
        })
    })
}

mod preinit {
    wit_bindgen::generate!({
        inline: "package edgegate:preinit; world preinit { export wizer-initialize: func(); }",
        world: "preinit",
    });

    /// The export wizer calls at build time (and removes from the component it writes).
    struct Preinit;

    impl Guest for Preinit {
        fn wizer_initialize() {
            let _ = super::gateway();
        }
    }

    export!(Preinit);
}

#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    let response = match gateway() {
        Some(gateway) => match from_wasi(request) {
            // An instance serves one request: it starts knowing nothing (verified tokens are
            // shared through the key-value store instead, see gateway_core::auth).
            Some((request, client)) => {
                let state = IsolateState::new();
                gateway_core::handle(gateway, &state, &SpinPlatform::default(), request, &client).await
            }
            None => problem(ProblemKind::BadRequest, "The request could not be read.", ""),
        },
        None => problem(ProblemKind::Internal, "The gateway is misconfigured.", ""),
    };
    send_response(response, response_out).await;
}

/// The request as `http` types, and the client as the host reports it.
fn from_wasi(request: IncomingRequest) -> Option<(Request<SpinBody>, Client)> {
    let https = matches!(request.scheme(), Some(Scheme::Https));
    let mut headers = header_map(request.headers().entries());
    let client = Runtime::Spin.take_client(&mut headers, https);
    let method = match request.method() {
        // spin-sdk's own conversion panics on a method `http` refuses.
        Method::Other(other) => http::Method::from_bytes(other.as_bytes()).ok()?,
        known => http::Method::from(known),
    };
    let url = request_url(https, request.authority().as_deref(), &headers, request.path_with_query().as_deref());
    let mut builder = Request::builder().method(method).uri(url);
    if let Some(map) = builder.headers_mut() {
        *map = headers;
    }
    Some((builder.body(SpinBody::Stream(SpinStream::open(Owner::Request(request)))).ok()?, client))
}

/// The headers as wasi-http fields. Appended one by one: `Fields::from_list` rejects the
/// whole list when one header is forbidden by the host, which would drop every header.
fn fields_of(headers: &HeaderMap) -> Fields {
    let fields = Fields::new();
    for (name, value) in headers {
        let _ = fields.append(name.as_str(), value.as_bytes());
    }
    fields
}

async fn send_response(response: Response<SpinBody>, response_out: ResponseOutparam) {
    let (parts, body) = response.into_parts();
    let outgoing = OutgoingResponse::new(fields_of(&parts.headers));
    let _ = outgoing.set_status_code(parts.status.as_u16());
    let sink = outgoing.body().ok().and_then(BodyWriter::new);
    response_out.set(outgoing);
    if let Some(sink) = sink {
        let _ = pump(body, sink).await;
    }
}

/// Why a body was not copied to its end.
enum PumpError {
    /// The source failed (an upstream that closed mid-body, a client whose upload broke off).
    Source,
    /// The source sent nothing for its idle bound ([`ByteStream::idle_timeout`]).
    Stalled,
    /// More bytes came than the body's limit allows.
    TooLarge,
    /// The receiver went away.
    Sink,
}

/// Copies a body into a wasi outgoing body without holding it whole (the bytes read ahead,
/// then the rest moved inside the host), counting it against its limit, and finishes it only
/// when the source ended cleanly. A source that fails or passes its limit leaves the outgoing
/// body unfinished, and the receiver sees the message aborted rather than a short one that
/// looks complete.
async fn pump(body: SpinBody, mut sink: BodyWriter) -> Result<(), PumpError> {
    match body {
        SpinBody::Empty => {}
        SpinBody::Bytes(bytes) => sink.write(&bytes).await.map_err(|_| PumpError::Sink)?,
        SpinBody::Stream(stream) => {
            let limit = stream.limit.unwrap_or(u64::MAX);
            let ahead = stream.read_ahead.len() as u64;
            if ahead > limit {
                return Err(PumpError::TooLarge);
            }
            let source = stream.source.ok_or(PumpError::Source)?;
            sink.write(&stream.read_ahead).await.map_err(|_| PumpError::Sink)?;
            sink.splice_from(&source, limit - ahead, stream.idle).await?;
            source.finish();
        }
    }
    sink.finish().map_err(|_| PumpError::Sink)
}

/// A wasi `outgoing-body` being written, finished only by [`BodyWriter::finish`].
///
/// Dropped unfinished, the body is aborted: wasmtime-wasi-http (Spin's engine) turns the
/// `outgoing-body` drop into an error of the hyper body, and hyper ends the HTTP/1.1 message
/// without its last chunk (or short of its Content-Length) and closes the connection. spin-sdk's
/// own `take_body` sink calls `finish` when dropped, which would end a broken body as if it were
/// complete, so it is not used.
struct BodyWriter {
    // Dropped in this order: the stream is a child resource of the body.
    stream: Option<OutputStream>,
    body: Option<OutgoingBody>,
}

impl BodyWriter {
    fn new(body: OutgoingBody) -> Option<Self> {
        let stream = body.write().ok()?;
        Some(Self { stream: Some(stream), body: Some(body) })
    }

    /// Writes all of `chunk`, waiting for the stream to accept more when it is full.
    async fn write(&mut self, mut chunk: &[u8]) -> Result<(), StreamError> {
        let stream = self.stream.as_ref().ok_or(StreamError::Closed)?;
        loop {
            if chunk.is_empty() {
                // A request to pass the bytes on; it does not wait (a no-op in wasmtime-wasi-http).
                return stream.flush();
            }
            match stream.check_write()? {
                0 => ready(|| stream.subscribe()).await,
                permitted => {
                    let n = usize::try_from(permitted).unwrap_or(usize::MAX).min(chunk.len());
                    let (now, rest) = chunk.split_at_checked(n).ok_or(StreamError::Closed)?;
                    stream.write(now)?;
                    chunk = rest;
                }
            }
        }
    }

    /// Moves `source` into this body inside the host (wasi `splice`: the bytes never enter the
    /// component's memory), counting them against `limit` and giving up when the source sends
    /// nothing for `idle`. Waiting for the receiver does not count as the source idling.
    async fn splice_from(&mut self, source: &WasiBody, limit: u64, idle: Option<Duration>) -> Result<(), PumpError> {
        let output = self.stream.as_ref().ok_or(PumpError::Sink)?;
        let mut sent = 0u64;
        loop {
            let permitted = output.check_write().map_err(|_| PumpError::Sink)?;
            if permitted == 0 {
                ready(|| output.subscribe()).await;
                continue;
            }
            // One byte past the limit is enough to know it was passed.
            let wanted = permitted.min(SPLICE_SIZE).min(limit.saturating_sub(sent).saturating_add(1));
            match output.splice(&source.input, wanted) {
                Ok(0) => within(idle, ready(|| source.input.subscribe())).await?,
                Ok(moved) => {
                    sent = sent.saturating_add(moved);
                    if sent > limit {
                        return Err(PumpError::TooLarge);
                    }
                }
                // The source's end (check-write above has vouched for the sink).
                Err(StreamError::Closed) => return Ok(()),
                Err(StreamError::LastOperationFailed(_)) => return Err(PumpError::Source),
            }
        }
    }

    /// Ends the body cleanly (the terminating chunk, or the Content-Length reached).
    fn finish(mut self) -> Result<(), ErrorCode> {
        drop(self.stream.take());
        match self.body.take() {
            Some(body) => OutgoingBody::finish(body, None),
            None => Ok(()),
        }
    }
}

/// The most one read or splice moves.
const SPLICE_SIZE: u64 = 64 * 1024;

/// Resolves once the pollable `subscribe` makes is ready.
async fn ready(subscribe: impl Fn() -> wasi::io::poll::Pollable) {
    let mut registration: Option<spin_executor::CancelOnDropToken> = None;
    std::future::poll_fn(|cx| {
        let pollable = subscribe();
        if pollable.ready() {
            return Poll::Ready(());
        }
        registration = Some(spin_executor::push_waker_and_get_token(pollable, cx.waker().clone()).into());
        Poll::Pending
    })
    .await;
}

/// Waits for `arrival`, for at most `idle` when there is a bound.
async fn within(idle: Option<Duration>, arrival: impl std::future::Future<Output = ()>) -> Result<(), PumpError> {
    let Some(idle) = idle else {
        arrival.await;
        return Ok(());
    };
    match futures::future::select(std::pin::pin!(arrival), std::pin::pin!(sleep(idle))).await {
        futures::future::Either::Left(_) => Ok(()),
        futures::future::Either::Right(_) => Err(PumpError::Stalled),
    }
}

/// A body as Spin holds it: an incoming wasi stream (request or upstream response), or bytes
/// the gateway produced.
pub type SpinBody = StreamBody<SpinStream>;

/// An incoming body (the client's request or an upstream's response): its wasi stream, the
/// bytes already read from it (sent first), the limit it is counted against as it is sent
/// ([`ByteStream::limited`]) and the longest it may stall ([`ByteStream::idle_timeout`]).
pub struct SpinStream {
    /// `None` when the body could not be opened: a broken body, never an empty one.
    source: Option<WasiBody>,
    read_ahead: Vec<u8>,
    limit: Option<u64>,
    idle: Option<Duration>,
}

impl std::fmt::Debug for SpinStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpinStream").field("limit", &self.limit).field("idle", &self.idle).finish_non_exhaustive()
    }
}

/// What an incoming body belongs to. The response is kept whole: dropping an
/// `IncomingResponse` cancels the request in wasmtime-wasi-http.
enum Owner {
    Request(IncomingRequest),
    Response(IncomingResponse),
}

/// An incoming body's raw wasi stream.
struct WasiBody {
    // Dropped in this order: the stream is a child resource of the body, the body of the
    // request or response it came with.
    input: wasi::io::streams::InputStream,
    body: Option<spin_sdk::wit::wasi::http0_2_0::types::IncomingBody>,
    _owner: Owner,
}

impl WasiBody {
    /// The next bytes (`None` at the end), waiting for them at most `idle` at a time.
    async fn read(&self, idle: Option<Duration>) -> Result<Option<Vec<u8>>, PumpError> {
        loop {
            match self.input.read(SPLICE_SIZE) {
                Ok(bytes) if bytes.is_empty() => within(idle, ready(|| self.input.subscribe())).await?,
                Ok(bytes) => return Ok(Some(bytes)),
                Err(StreamError::Closed) => return Ok(None),
                Err(StreamError::LastOperationFailed(_)) => return Err(PumpError::Source),
            }
        }
    }

    /// Done with the body: its trailers are not read.
    fn finish(mut self) {
        if let Some(body) = self.body.take() {
            drop(self.input);
            let _ = spin_sdk::wit::wasi::http0_2_0::types::IncomingBody::finish(body);
        }
    }
}

impl SpinStream {
    fn open(owner: Owner) -> Self {
        let body = match &owner {
            Owner::Request(request) => request.consume(),
            Owner::Response(response) => response.consume(),
        };
        let source = body.ok().and_then(|body| {
            let input = body.stream().ok()?;
            Some(WasiBody { input, body: Some(body), _owner: owner })
        });
        Self { source, read_ahead: Vec::new(), limit: None, idle: None }
    }

    /// The body this stream turns out to be: none when it ends before its first byte (wasi
    /// cannot tell a request without a body from one with an empty stream, and a GET must not
    /// go upstream with a chunked empty body), else the stream with its first bytes read.
    async fn settle(mut self) -> Result<SpinBody, PumpError> {
        let source = self.source.as_ref().ok_or(PumpError::Source)?;
        if self.read_ahead.is_empty() {
            match source.read(self.idle).await? {
                None => return Ok(SpinBody::Empty),
                Some(bytes) => self.read_ahead = bytes,
            }
        }
        Ok(SpinBody::Stream(self))
    }
}

impl ByteStream for SpinStream {
    async fn collect(self, limit: u64) -> Result<Bytes, BodyError> {
        let mut buffer = LimitedBuffer::new(limit);
        buffer.push(&self.read_ahead)?;
        let source = self.source.ok_or(BodyError::Read)?;
        while let Some(bytes) = source.read(self.idle).await.map_err(|_| BodyError::Read)? {
            buffer.push(&bytes)?;
        }
        source.finish();
        Ok(buffer.finish())
    }

    fn limited(self, limit: u64) -> Self {
        Self { limit: Some(limit), ..self }
    }

    fn idle_timeout(self, idle: Duration) -> Self {
        Self { idle: Some(idle), ..self }
    }
}

/// The Spin platform: wasi-http outbound, wasi clocks and random, stdout for the access log,
/// Spin variables for secrets and the `default` key-value store (opened on first use).
#[derive(Default)]
struct SpinPlatform {
    bucket: std::cell::OnceCell<Option<keyvalue::Bucket>>,
}

/// The key-value store label the gateway uses; spin.toml must grant it.
const KV_STORE: &str = "default";

use spin_sdk::wit::wasi::keyvalue::store as keyvalue;

impl SpinPlatform {
    fn bucket(&self) -> Result<&keyvalue::Bucket, StoreError> {
        self.bucket.get_or_init(|| keyvalue::open(KV_STORE).ok()).as_ref().ok_or(StoreError::Unavailable)
    }
}

impl Secrets for SpinPlatform {
    fn secret(&self, name: &str) -> Option<String> {
        spin_sdk::variables::get(name).ok()
    }
}

impl Store for SpinPlatform {
    const FRESH_INSTANCE_PER_REQUEST: bool = true;

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let value = self.bucket()?.get(key).map_err(|e| StoreError::Failed(format!("{e:?}")))?;
        Ok(value.map(Bytes::from))
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<(), StoreError> {
        self.bucket()?.set(key, &value).map_err(|e| StoreError::Failed(format!("{e:?}")))
    }

    /// A compare-and-swap on the claim's expiry (decimal milliseconds): every instance reads
    /// and writes it atomically, so one wins.
    async fn claim(&self, key: &str, now: u64, hold_ms: u64) -> Result<bool, StoreError> {
        compare_and_swap(self.bucket()?, key, |stored| Ok(gateway_core::ports::claim_stored(stored, now, hold_ms)))
    }
}

impl Fetch for SpinPlatform {
    type Body = SpinBody;

    async fn fetch(&self, request: Request<SpinBody>) -> Result<Response<SpinBody>, FetchError> {
        let (parts, body) = request.into_parts();
        let outgoing = OutgoingRequest::new(fields_of(&parts.headers));
        let invalid = |what: &str| FetchError::InvalidRequest(what.to_owned());
        outgoing.set_method(&Method::from(parts.method.clone())).map_err(|()| invalid("method"))?;
        let scheme = if parts.uri.scheme_str() == Some("https") { Scheme::Https } else { Scheme::Http };
        outgoing.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
        outgoing.set_authority(parts.uri.authority().map(|a| a.as_str())).map_err(|()| invalid("authority"))?;
        outgoing.set_path_with_query(parts.uri.path_and_query().map(|p| p.as_str())).map_err(|()| invalid("path"))?;

        // A declared length says there is a body: it is spliced as it is. Without one, the first
        // chunk tells (wasi cannot tell an absent body from an empty one).
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|length| length > 0);
        let body = match body {
            SpinBody::Stream(stream) if declared => SpinBody::Stream(stream),
            SpinBody::Stream(stream) => match stream.settle().await {
                Ok(body) => body,
                Err(PumpError::Stalled) => return Err(FetchError::BodyStalled),
                Err(_) => return Err(invalid("body")),
            },
            known => known,
        };
        let sink = outgoing.body().ok().and_then(BodyWriter::new).ok_or_else(|| invalid("body"))?;
        let send = spin_sdk::http::send::<_, IncomingResponse>(outgoing);
        // An upload that fails mid-way or passes its limit is aborted, never sent upstream as
        // a complete body.
        let (response, upload) = futures::join!(send, pump(body, sink));
        match upload {
            Err(PumpError::TooLarge) => return Err(FetchError::BodyTooLarge),
            Err(PumpError::Stalled) => return Err(FetchError::BodyStalled),
            _ => {}
        }
        let response = response.map_err(|e| FetchError::Unreachable(e.to_string()))?;
        let headers = header_map(response.headers().entries());
        let status = http::StatusCode::from_u16(response.status())
            .map_err(|_| FetchError::Unreachable("invalid status".into()))?;
        let mut out = Response::new(SpinBody::Stream(SpinStream::open(Owner::Response(response))));
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

impl Clock for SpinPlatform {
    fn now(&self) -> UnixMillis {
        let now = wasi::clocks::wall_clock::now();
        now.seconds * 1000 + u64::from(now.nanoseconds / 1_000_000)
    }
}

impl Sleep for SpinPlatform {
    async fn sleep(&self, duration: Duration) {
        sleep(duration).await;
    }
}

/// Resolves once `duration` has passed on the monotonic clock.
async fn sleep(duration: Duration) {
    let deadline =
        wasi::clocks::monotonic_clock::now().saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    let mut registration: Option<spin_executor::CancelOnDropToken> = None;
    std::future::poll_fn(|cx| {
        let now = wasi::clocks::monotonic_clock::now();
        if now >= deadline {
            return Poll::Ready(());
        }
        let pollable = wasi::clocks::monotonic_clock::subscribe_duration(deadline - now);
        registration = Some(spin_executor::push_waker_and_get_token(pollable, cx.waker().clone()).into());
        Poll::Pending
    })
    .await;
}

impl Entropy for SpinPlatform {
    fn fill(&self, buf: &mut [u8]) {
        let random = wasi::random::random::get_random_bytes(buf.len() as u64);
        for (target, source) in buf.iter_mut().zip(random) {
            *target = source;
        }
    }
}

impl AccessLog for SpinPlatform {
    fn log(&self, line: &str) {
        println!("{line}");
    }
}

/// Spin has no native crypto import: the core verifies in wasm.
impl SignatureVerifier for SpinPlatform {}

/// Exact counting on Spin's key-value store: read the state through a compare-and-swap
/// handle, decide, and swap; a concurrent writer makes the swap fail and the decision is made
/// again on the newer state. Spin's default store is SQLite on one node (atomic there); with a
/// Redis-backed store the same operations are atomic across nodes.
impl Limiter for SpinPlatform {
    async fn limit(
        &self,
        key: &str,
        request: &gateway_core::ratelimit::LimitRequest,
    ) -> Result<gateway_core::ratelimit::decide::Decision, StoreError> {
        if request.backend != gateway_core::ratelimit::Backend::Exact {
            // The build refuses such policies; this only guards a hand-made gateway.
            return Err(StoreError::Unavailable);
        }
        compare_and_swap(self.bucket()?, key, |stored| {
            gateway_core::ratelimit::counter::decide_stored(&request.rules, stored, request.now, request.cost)
                .map_err(StoreError::Failed)
        })
    }
}

/// Read, decide, swap on one key: `decide` sees the stored value and answers its result and
/// what to write (nothing: done). A concurrent writer makes the swap fail, and the decision
/// is made again on the newer value.
fn compare_and_swap<T>(
    bucket: &keyvalue::Bucket,
    key: &str,
    mut decide: impl FnMut(Option<&[u8]>) -> Result<(T, Option<Vec<u8>>), StoreError>,
) -> Result<T, StoreError> {
    use spin_sdk::wit::wasi::keyvalue::atomics;
    let failed = |e: keyvalue::Error| StoreError::Failed(format!("{e:?}"));
    for _ in 0..MAX_CAS_ATTEMPTS {
        let cas = atomics::Cas::new(bucket, key).map_err(failed)?;
        let stored = cas.current().map_err(failed)?;
        let (result, write) = decide(stored.as_deref())?;
        let Some(bytes) = write else { return Ok(result) };
        match atomics::swap(cas, &bytes) {
            Ok(()) => return Ok(result),
            Err(atomics::CasError::CasFailed(_)) => continue,
            Err(atomics::CasError::StoreError(e)) => return Err(failed(e)),
        }
    }
    Err(StoreError::Failed(format!("compare-and-swap lost {MAX_CAS_ATTEMPTS} times in a row")))
}

/// Bounds the retries of a contended compare-and-swap.
const MAX_CAS_ATTEMPTS: usize = 64;

/// Spin has no edge cache: cacheable requests are misses, and `Cache-Status` says so.
impl EdgeCache for SpinPlatform {}
