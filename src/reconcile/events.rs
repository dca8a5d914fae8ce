//! The Event publisher (a task of its own, so a pass never waits for the API server) and the change stream into the worker.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Events are published by a task of their own, so a pass never waits for them; `pending` counts the queue.
pub(super) struct EventQueue {
    pub(super) tx: mpsc::UnboundedSender<QueuedEvent>,
    pub(super) rx: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<QueuedEvent>>>,
    pub(super) pending: Arc<AtomicUsize>,
    /// Open unless a full sync runs: its Events (one per object at a cold start) wait for it to end, so the
    /// status writes, which users wait for, do not share the API server with thousands of Event creations.
    pub(super) open: watch::Sender<bool>,
}

impl EventQueue {
    pub(super) fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: parking_lot::Mutex::new(Some(rx)),
            pending: Arc::default(),
            open: watch::Sender::new(true),
        }
    }

    /// Holds (`false`) or releases (`true`) the publication of queued Events.
    pub(super) fn gate(&self, open: bool) {
        self.open.send_replace(open);
    }

    pub(super) fn send(&self, e: QueuedEvent) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(e).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Starts the publisher (once).
    pub(super) fn spawn(
        &self,
        sink: Arc<dyn Sink>,
        progress: Arc<watch::Sender<Progress>>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let rx = self.rx.lock().take()?;
        let pending = self.pending.clone();
        let open = self.open.subscribe();
        Some(tokio::spawn(async move {
            tokio_stream_unbounded(rx)
                .for_each_concurrent(4, |(target, key, uid, notice)| {
                    let sink = sink.clone();
                    let pending = pending.clone();
                    let progress = progress.clone();
                    let mut open = open.clone();
                    async move {
                        // A closed sender (the worker is gone) publishes what is left.
                        let _ = open.wait_for(|o| *o).await;
                        sink.event(target, &key, uid.as_deref(), &notice).await;
                        let left = pending.fetch_sub(1, Ordering::AcqRel) - 1;
                        progress.send_modify(|p| p.events_pending = left);
                    }
                })
                .await;
        }))
    }
}

/// An unbounded receiver as a stream.
pub(super) fn tokio_stream_unbounded<T: Send + 'static>(
    rx: mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
