//! Calls of one JSON-RPC batch run concurrently. jsonrpsee runs them one after another, so a
//! batch of 100 `tx_submit` calls would reach the node as 100 separate admissions, each waiting
//! for the one before; run together, the node checks them as one batch. Responses keep the
//! order of the requests.
//!
//! It also gives each request its [`ResponseBudget`] (one for a single call, one shared by all
//! the calls of a batch), which the methods that build large results charge as they go.

use std::future::Future;

use futures::future::join_all;
use jsonrpsee::{
    core::server::{BatchResponseBuilder, MethodResponse},
    server::middleware::rpc::{Batch, BatchEntry, Notification, Request, RpcServiceT},
};

use crate::budget::ResponseBudget;

/// The RPC middleware (wrap the server's service with it).
#[derive(Clone, Debug)]
pub struct ConcurrentBatch<S> {
    service: S,
    max_response_bytes: usize,
}

impl<S> ConcurrentBatch<S> {
    /// Wraps `service`; a batch's responses together may be at most `max_response_bytes`.
    pub fn new(service: S, max_response_bytes: usize) -> Self {
        ConcurrentBatch { service, max_response_bytes }
    }
}

impl<S> RpcServiceT for ConcurrentBatch<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type BatchResponse = MethodResponse;
    type NotificationResponse = MethodResponse;

    fn call<'a>(&self, mut request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let budget = ResponseBudget::for_calls(self.max_response_bytes, std::iter::once(&request.id));
        request.extensions_mut().insert(budget);
        self.service.call(request)
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let service = self.service.clone();
        let limit = self.max_response_bytes;
        // One budget for the whole batch: its responses are sent (and limited) as one.
        let ids = batch.iter().filter_map(|entry| match entry {
            Ok(BatchEntry::Call(request)) => Some(&request.id),
            _ => None,
        });
        let budget = ResponseBudget::for_calls(limit, ids);
        for entry in batch.iter_mut() {
            if let Ok(BatchEntry::Call(request)) = entry {
                request.extensions_mut().insert(budget.clone());
            }
        }
        async move {
            let calls = batch.into_iter().map(|entry| {
                let service = service.clone();
                async move {
                    match entry {
                        Ok(BatchEntry::Call(request)) => Some(service.call(request).await),
                        Ok(BatchEntry::Notification(notification)) => {
                            service.notification(notification).await;
                            None
                        }
                        Err(error) => {
                            let (error, id) = error.into_parts();
                            Some(MethodResponse::error(id, error))
                        }
                    }
                }
            });
            let responses = join_all(calls).await;
            let mut notified = false;
            let mut builder = BatchResponseBuilder::new_with_limit(limit);
            for response in responses {
                match response {
                    Some(response) => {
                        if let Err(too_large) = builder.append(response) {
                            return too_large;
                        }
                    }
                    None => notified = true,
                }
            }
            // As jsonrpsee answers: notifications alone get no response.
            if builder.is_empty() && notified {
                MethodResponse::notification()
            } else {
                MethodResponse::from_batch(builder.finish())
            }
        }
    }

    fn notification<'a>(&self, notification: Notification<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.service.notification(notification)
    }
}
