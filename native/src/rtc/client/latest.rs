//! A bounded queue for one reader that keeps the newest items: when it is full, a new
//! item pushes the oldest out (counted), so a slow reader sees recent pictures, late
//! ones never pile up, and memory stays bounded.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

/// The queue, shared (in an `Arc`) by its writer and its one reader.
#[derive(Debug)]
pub(crate) struct Latest<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    notify: Notify,
    closed: AtomicBool,
    dropped: AtomicU64,
}

impl<T> Latest<T> {
    /// A queue of at most `capacity` items (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            items: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
            notify: Notify::new(),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        }
    }

    fn items(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        // A panic while holding the lock leaves a queue of whole items: keep using it.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `item`, pushing the oldest out when full.
    pub(crate) fn push(&self, item: T) {
        {
            let mut items = self.items();
            if items.len() >= self.capacity {
                items.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            items.push_back(item);
        }
        self.notify.notify_one();
    }

    /// No more items will come; the reader gets what is left, then `None`.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Items pushed out unread so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The oldest item, if any, without waiting.
    pub(crate) fn try_pop(&self) -> Option<T> {
        self.items().pop_front()
    }

    /// The oldest item, waiting for one; `None` once closed and empty. One reader only.
    pub(crate) async fn pop(&self) -> Option<T> {
        loop {
            if let Some(item) = self.try_pop() {
                return Some(item);
            }
            if self.is_closed() {
                // An item pushed just before closing.
                return self.try_pop();
            }
            // `notify_one` leaves a permit when nobody waits, so a push between the
            // check above and this wait is not missed.
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let q = Latest::new(2);
        for i in 0..5 {
            q.push(i);
        }
        assert_eq!(q.dropped(), 3);
        assert_eq!(q.try_pop(), Some(3));
        assert_eq!(q.try_pop(), Some(4));
        assert_eq!(q.try_pop(), None);
    }

    #[test]
    fn a_zero_capacity_still_holds_one() {
        let q = Latest::new(0);
        q.push('a');
        q.push('b');
        assert_eq!(q.try_pop(), Some('b'));
    }

    #[tokio::test]
    async fn the_reader_waits_for_a_push_and_ends_after_close() {
        let q = Arc::new(Latest::new(4));
        let writer = q.clone();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(i) = q.pop().await {
                got.push(i);
            }
            got
        });
        writer.push(1);
        writer.push(2);
        writer.close();
        let got = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the reader ends once the queue is closed")
            .expect("the reader task");
        assert_eq!(got, vec![1, 2]);
    }
}
