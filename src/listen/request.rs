//! A flow's request for one event: the one call from a flow to the exact bytes it sends.

use jiff::Timestamp;

use crate::listen::Flow;
use crate::model::{Catalog, OptOutEvent, Profile};
use crate::webhook::{RequestBuildError, WebhookRequest};

impl Flow {
    /// The exact request this flow sends for `event` about `profile`: its Webhook node's
    /// request, with the flow's own id in the `webhook-id` and the flow's Section taken from
    /// `catalog` (which `folder_id` parameters need; a catalog without the Section is enough for
    /// every other parameter).
    ///
    /// Pure: no I/O, no clock, no randomness; the same inputs give the same bytes. `now` is only
    /// used for `webhook-timestamp` when the node signs. For an event routed by a
    /// [`Router`](crate::Router), [`Match::build_request`](crate::listen::Match::build_request)
    /// does the same with the router's catalog.
    ///
    /// ```
    /// use optout_relay::{Catalog, FlowFile, OptOutEvent, Profile};
    ///
    /// let flow = FlowFile::from_json(r#"{"version": 1, "flows": [{
    ///     "id": "crm", "section": "sec-1", "listen": {"kinds": ["email_unsubscribe"]},
    ///     "webhook": {"method": "POST", "url": "https://crm.example.com/optout?source=platform",
    ///                 "params": [{"name": "email", "source": "email"},
    ///                            {"name": "subscription", "source": "subscription_id"}]}
    /// }]}"#)?.flows.remove(0);
    /// let event: OptOutEvent = serde_json::from_str(r#"{"id": "evt-1", "profile": "p-1",
    ///     "section": "sec-1", "kind": "email_unsubscribe", "subscription": "123456",
    ///     "occurred_at": "2026-11-26T09:30:00Z", "origin": "communication"}"#)?;
    /// let profile: Profile = serde_json::from_str(r#"{"id": "p-1", "email": "a+b@example.com"}"#)?;
    ///
    /// let built = flow.build_request(&Catalog::default(), &profile, &event, "2026-11-26T09:30:05Z".parse()?)?;
    /// assert_eq!(
    ///     built.request().uri(),
    ///     "https://crm.example.com/optout?source=platform&email=a%2Bb%40example.com&subscription=123456"
    /// );
    /// assert!(built.request().body().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RequestBuildError::SectionMismatch`] when the event belongs to another Section than the
    /// flow; [`RequestBuildError::MissingValue`] when a required parameter's source has no value
    /// (the Profile has no Email; `subscription_id` on an Email - Abuse event), naming the
    /// parameter and the source; [`RequestBuildError::ProfileMismatch`] when the event is
    /// another Profile's; [`RequestBuildError::SectionNeeded`] for a `folder_id` parameter when
    /// `catalog` does not hold the flow's Section; [`RequestBuildError::UrlTooLong`] when the
    /// query grows past [`MAX_REQUEST_URL_LEN`](crate::webhook::MAX_REQUEST_URL_LEN).
    pub fn build_request(
        &self,
        catalog: &Catalog,
        profile: &Profile,
        event: &OptOutEvent,
        now: Timestamp,
    ) -> Result<WebhookRequest, RequestBuildError> {
        if event.section() != &self.section {
            return Err(RequestBuildError::SectionMismatch {
                event_section: event.section().clone(),
                section: self.section.clone(),
            });
        }
        let section = catalog.section(&self.section);
        self.webhook.build(&self.id, profile, event, section, now)
    }
}
