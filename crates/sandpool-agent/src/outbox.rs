//! The agent's half of the channel back to the host: responses and unsolicited events,
//! each written as one whole frame under a single lock.

use sandpool_proto::{write_frame, Envelope, Event, Response, EVENT_ID};
use std::io::Write;
use std::sync::Mutex;

/// Serializes every frame the agent sends.
pub struct Outbox {
    writer: Mutex<Box<dyn Write + Send>>,
}

impl Outbox {
    pub fn new(writer: impl Write + Send + 'static) -> Outbox {
        Outbox {
            writer: Mutex::new(Box::new(writer)),
        }
    }

    /// Sends the response to request `id`.
    pub fn respond(&self, id: u64, body: Response) {
        let mut w = self.writer.lock().expect("writer lock poisoned");
        if let Err(e) = write_frame(&mut *w, &Envelope { id, body }) {
            tracing::warn!(id, error = %e, "cannot send a response");
        }
    }

    /// Sends an unsolicited event (envelope id [`EVENT_ID`]).
    pub fn event(&self, event: Event) {
        self.respond(EVENT_ID, Response::Event(event));
    }
}
