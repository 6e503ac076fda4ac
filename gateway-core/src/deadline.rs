//! Deadlines: a piece of work raced against a timer the platform provides (`Sleep`), so the
//! core never reads a clock to bound an await. Every phase that waits on the network or the
//! client (upstream attempts, body reads, JWKS fetches, aggregation legs) bounds it here.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

/// `Some(output)` if `work` finishes first, `None` if `deadline` does.
pub(crate) async fn with_timeout<F: Future>(work: F, deadline: impl Future<Output = ()>) -> Option<F::Output> {
    let mut work = pin!(work);
    let mut deadline = pin!(deadline);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
