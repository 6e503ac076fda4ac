//! The floor a Rust gateway on Workers cannot go below: every request crosses into the wasm
//! (worker-build's glue, wasm-bindgen's futures executor), is sent to the bench upstream with the
//! same method, headers and body, and the upstream's answer goes back untouched. No routing, no
//! policy, no log line: beside the bare JS pass-through, the price of being Rust/wasm at all.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::{event, Context, Env};

const UPSTREAM: &str = "http://127.0.0.1:27281";

#[event(fetch)]
async fn fetch(request: web_sys::Request, _env: Env, _ctx: Context) -> worker::Result<web_sys::Response> {
    // `/proxy/items?x=1` → `/items?x=1`, as tests/bench/passthrough.mjs does.
    let url = request.url();
    let after_host = url.splitn(4, '/').nth(3).unwrap_or_default();
    let path = after_host.strip_prefix("proxy").unwrap_or(after_host);
    // A `Request` is a valid `RequestInit` (method, headers, body), as `new Request(url, request)` in JS.
    let outbound = web_sys::Request::new_with_str_and_init(&format!("{UPSTREAM}{path}"), request.unchecked_ref())?;
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let response = JsFuture::from(global.fetch_with_request(&outbound)).await?;
    Ok(response.unchecked_into())
}
