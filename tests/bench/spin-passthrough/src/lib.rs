//! The bare pass-through edgegate's Spin rows in `scripts/bench` are measured against: every
//! request goes to the bench upstream with the same path, method and headers, and the upstream's
//! answer streams back. No routing, no policy: the floor a Spin component can reach.
#![allow(unsafe_code)] // `#[http_component]` expands to the component export glue.

use futures::{SinkExt, StreamExt};
use spin_sdk::http::{
    Fields, IncomingRequest, IncomingResponse, OutgoingRequest, OutgoingResponse, ResponseOutparam, Scheme,
};
use spin_sdk::http_component;

const UPSTREAM: &str = "127.0.0.1:27281";

#[http_component]
async fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    let headers = Fields::from_list(&request.headers().entries()).unwrap_or_else(|_| Fields::new());
    let outgoing = OutgoingRequest::new(headers);
    let _ = outgoing.set_method(&request.method());
    let _ = outgoing.set_scheme(Some(&Scheme::Http));
    let _ = outgoing.set_authority(Some(UPSTREAM));
    let _ = outgoing.set_path_with_query(request.path_with_query().as_deref());
    let Ok(upstream) = spin_sdk::http::send::<_, IncomingResponse>(outgoing).await else {
        let response = OutgoingResponse::new(Fields::new());
        let _ = response.set_status_code(502);
        response_out.set(response);
        return;
    };
    let response = OutgoingResponse::new(upstream.headers().clone());
    let _ = response.set_status_code(upstream.status());
    let mut sink = response.take_body();
    response_out.set(response);
    let mut body = upstream.take_body_stream();
    while let Some(Ok(chunk)) = body.next().await {
        if sink.send(chunk).await.is_err() {
            break;
        }
    }
}
