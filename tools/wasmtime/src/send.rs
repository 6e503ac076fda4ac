//! Outbound HTTP for the guest: plain HTTP/1.1 over TCP, after wasmtime-wasi-http's default
//! sender without its TLS half. The hosts this tool talks to are test upstreams on 127.0.0.1;
//! leaving rustls, ring and webpki-roots out of the build saves a cold CI run their compile.
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http::{Request, Response};
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiHttpHooks};

type WasiBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Error>;
type Done = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// The hooks of every request: the defaults, with this sender.
pub struct PlainHttp;

impl WasiHttpHooks for PlainHttp {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Done,
    ) -> Box<dyn Future<Output = Result<(Response<WasiBody>, Done), Error>> + Send> {
        drop(fut);
        Box::new(async move {
            let (response, io) = send(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Done))
        })
    }
}

async fn send(
    mut request: Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(Response<IncomingBody>, impl Future<Output = Result<(), Error>> + Send), Error> {
    let uri = request.uri();
    if uri.scheme() == Some(&Scheme::HTTPS) {
        return Err(Error::Tls(std::io::Error::other("this test host speaks plain HTTP only")));
    }
    let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    let authority = match authority.port() {
        Some(_) => authority.to_string(),
        None => format!("{authority}:80"),
    };
    let limit = |pick: fn(&RequestOptions) -> Option<Duration>| {
        options.as_ref().and_then(pick).unwrap_or(Duration::from_secs(600))
    };
    let connect_timeout = limit(|o| o.connect_timeout);
    let first_byte_timeout = limit(|o| o.first_byte_timeout);
    // Tokio panics on a zero interval.
    let between_bytes_timeout = limit(|o| o.between_bytes_timeout).max(Duration::from_nanos(1));

    let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(&authority))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    let (mut sender, connection) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    // The request line carries the path alone (scheme and authority only when addressing a proxy).
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    *request.uri_mut() = http::Uri::builder().path_and_query(path).build().map_err(|_| Error::HttpRequestUriInvalid)?;

    let response = async move {
        let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;
        let mut timeout = tokio::time::interval(between_bytes_timeout);
        timeout.reset();
        Ok::<_, Error>(response.map(|incoming| IncomingBody { incoming, timeout }))
    };
    let mut response = pin!(response);
    let mut connection = Some(connection);
    // The response, while driving the connection's I/O.
    let response = poll_fn(|cx| match response.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        Poll::Pending => {
            let Some(io) = connection.as_mut() else { return Poll::Pending };
            let result = ready!(Pin::new(io).poll(cx));
            connection = None;
            match result {
                Ok(()) => response.as_mut().poll(cx),
                Err(error) => Poll::Ready(Err(Error::from(error))),
            }
        }
    })
    .await?;
    Ok((response, async move {
        match connection.take() {
            None => Ok(()),
            Some(io) => io.await.map_err(|e| if e.is_timeout() { Error::HttpResponseTimeout } else { Error::from(e) }),
        }
    }))
}

/// The response body, failed when it stalls longer than the between-bytes timeout.
struct IncomingBody {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
}

impl http_body::Body for IncomingBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(if e.is_timeout() { Error::HttpResponseTimeout } else { Error::from(e) })))
            }
            Poll::Ready(Some(Ok(frame))) => {
                self.timeout.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timeout.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}
