//! Durability callbacks: group commit on a thread of its own.
//!
//! `append` publishes its entries at once and queues its callback with the
//! offset it needs durable (one past its last entry). The flusher thread
//! takes whatever is queued, runs one [`SharedWriter::sync`] (which makes
//! every record appended so far durable, however many appends that is),
//! and then completes, in queue order, every callback the new durable
//! offset covers. Appends that arrive while a sync runs wait for the next
//! one, which covers them all: one fsync per round, never one per entry,
//! and never on the caller's task.
//!
//! A failed sync latches murakami's writer (an fsync error is not
//! retryable): the callbacks waiting then, and every one queued later,
//! complete with that error.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use murakami::SharedWriter;

/// What runs when the offset it waits for is durable (or cannot be).
pub type Callback = Box<dyn FnOnce(io::Result<()>) + Send>;

#[derive(Default)]
struct Queue {
    waiting: VecDeque<(u64, Callback)>,
    /// The first error a sync returned: every later callback gets it too.
    failed: Option<(io::ErrorKind, String)>,
    stop: bool,
}

struct Inner {
    queue: Mutex<Queue>,
    wake: Condvar,
}

fn lock(inner: &Inner) -> MutexGuard<'_, Queue> {
    inner.queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// The flusher thread and its queue.
pub struct Flusher {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts the thread that syncs `writer` for queued callbacks.
    pub fn start(writer: SharedWriter) -> io::Result<Flusher> {
        let inner = Arc::new(Inner {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&inner);
        let thread = thread::Builder::new()
            .name("murakami-raft-flush".into())
            .spawn(move || run(&worker, &writer))?;
        Ok(Flusher {
            inner,
            thread: Some(thread),
        })
    }

    /// Queues `callback` to run once everything below `offset` is durable.
    pub fn push(&self, offset: u64, callback: Callback) {
        let mut queue = lock(&self.inner);
        if let Some(error) = &queue.failed {
            let error = to_error(error);
            drop(queue);
            callback(Err(error));
            return;
        }
        queue.waiting.push_back((offset, callback));
        drop(queue);
        self.inner.wake.notify_one();
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        lock(&self.inner).stop = true;
        self.inner.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn to_error((kind, message): &(io::ErrorKind, String)) -> io::Error {
    io::Error::new(*kind, message.clone())
}

fn run(inner: &Inner, writer: &SharedWriter) {
    loop {
        {
            let mut queue = lock(inner);
            while queue.waiting.is_empty() && !queue.stop {
                queue = inner.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
            if queue.waiting.is_empty() {
                return;
            }
        }
        // Outside the lock: appends go on queueing while the disk works.
        let synced = writer.sync();
        let mut queue = lock(inner);
        let ready: Vec<(u64, Callback)> = match synced {
            Ok(durable) => {
                let n = queue
                    .waiting
                    .iter()
                    .take_while(|(o, _)| *o <= durable)
                    .count();
                if n == 0 && durable >= writer.next_offset() {
                    // Waiting for records past the log's end: a truncation
                    // discarded them (the store drains the queue before it
                    // truncates, so this is a defect, reported, not a hang).
                    let message = "entries discarded before they were durable".to_string();
                    queue.failed = Some((io::ErrorKind::Other, message));
                    queue.waiting.drain(..).collect()
                } else {
                    queue.waiting.drain(..n).collect()
                }
            }
            Err(e) => {
                let kind = match &e {
                    murakami::Error::Io(io) => io.kind(),
                    _ => io::ErrorKind::Other,
                };
                queue.failed = Some((kind, format!("murakami sync failed: {e}")));
                queue.waiting.drain(..).collect()
            }
        };
        let failed = queue.failed.clone();
        drop(queue);
        for (_, callback) in ready {
            callback(match &failed {
                Some(error) => Err(to_error(error)),
                None => Ok(()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn callback(tx: &mpsc::Sender<(u64, io::Result<()>)>, n: u64) -> Callback {
        let tx = tx.clone();
        Box::new(move |r| tx.send((n, r)).unwrap())
    }

    #[test]
    fn callbacks_complete_in_order_once_durable() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = murakami::Log::open(dir.path(), Default::default()).unwrap();
        let writer = writer.into_shared();
        let flusher = Flusher::start(writer.clone()).unwrap();
        let (tx, rx) = mpsc::channel();
        for n in 0..100 {
            let end = writer.append(b"entry").unwrap() + 1;
            flusher.push(end, callback(&tx, n));
        }
        for n in 0..100 {
            let (got, result) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(got, n, "in order");
            result.unwrap();
            assert!(reader.durable_offset() > n, "durable before its callback");
        }
    }

    #[test]
    fn a_failed_sync_reaches_every_waiting_and_later_callback() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, _reader) = murakami::Log::open(dir.path(), Default::default()).unwrap();
        let writer = writer.into_shared();
        let flusher = Flusher::start(writer.clone()).unwrap();
        let end = writer.append(b"entry").unwrap() + 1;
        // A closed writer's syncs fail, as a latched one's do.
        writer.clone().close().unwrap();
        let (tx, rx) = mpsc::channel();
        flusher.push(end + 1, callback(&tx, 1));
        let (_, result) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("murakami sync failed")
        );
        flusher.push(end + 2, callback(&tx, 2));
        let (n, result) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(n, 2);
        assert!(result.is_err(), "a later callback gets the error too");
    }
}
