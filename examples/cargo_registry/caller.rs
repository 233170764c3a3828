//! What only cargo needs from the shared [`Caller`]: an index entry is readable by a
//! token that may read the crate, or else push it.

use axum::response::Response;
use feedkey::{Action, DenyReason, Grant, Target};

use crate::shared::{self, Caller, Registry};

impl Caller {
    /// Read, or else push, on the crate: what a crate's index entry needs (`cargo
    /// publish` reads the entry before and after uploading).
    pub async fn may_read_entry<R: Registry>(
        &self,
        app: &R,
        target: &Target<'_>,
    ) -> Result<Grant, Response> {
        let request = R::request(&self.headers).with_client_addr(self.client);
        let mut decision = app.keys().authorize(&request, Action::Read, target).await;
        if let Err(denial) = &decision
            && matches!(denial.reason(), DenyReason::ActionOutOfScope(_))
        {
            // No read: the push decision (and its reason, if it too is a denial) stands.
            decision = app.keys().authorize(&request, Action::Push, target).await;
        }
        shared::settle(app, decision, self.client, Some(target.feed_name()), || {
            format!(
                "Read or Push index of {}",
                target.package_id().unwrap_or("")
            )
        })
    }
}
