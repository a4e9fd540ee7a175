//! The router stage: assigns tags (by subchannel, by ticket, contract or customer property, by
//! the detected AI agents, else the `defaultSkill` tag), sets the priority from the tags, computes
//! `dueBy` and `firstResponseDueBy` in business hours, sends a customer's follow-up back to the
//! last agent, and emits `TicketRouted`. A ticket closed meanwhile is left alone.

mod overdue;
mod tags;

pub use overdue::run_overdue_scanner;
pub use tags::TagsCache;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use switchyard_calendar::BusinessCalendar;
use switchyard_domain::{Envelope, Priority, Stage, TicketStatus};
use switchyard_stage::{envelope_key, StageCx, StageError, StageHandler, StageOutput, WorkKey};
use switchyard_store::conditions::Condition;
use switchyard_store::routing::{self, RoutingFacts, Tag, TicketTagging};
use switchyard_store::settings::SettingsCache;
use switchyard_store::tickets::{self, TicketPatch};

pub struct Router {
    settings: SettingsCache,
    tags: TagsCache,
}

impl Router {
    pub fn new(settings: SettingsCache, tags: TagsCache) -> Self {
        Router { settings, tags }
    }

    /// The business calendar; validated when the setting was saved, so only read here.
    /// The business calendar (validated when the setting was saved, so only read here).
    async fn calendar(&self) -> Result<BusinessCalendar, StageError> {
        let raw = self.settings.get("businessHours").await?;
        serde_json::from_value(raw).map_err(StageError::permanent)
    }

    async fn first_response_hours(&self, channel: &str) -> Result<f64, StageError> {
        let per_channel = self.settings.get("firstResponseHoursByChannel").await?;
        match per_channel.get(channel).and_then(Value::as_f64) {
            Some(h) => Ok(h),
            None => Ok(self.settings.get_f64("firstResponseHours").await?),
        }
    }
}

/// Why a tag was assigned: the `source` stored with it.
fn assign_tags(tags: &[Tag], facts: &RoutingFacts) -> Vec<(i64, &'static str)> {
    let ctx =
        json!({"ticket": facts.ticket, "contract": facts.contract, "customer": facts.customer});
    let in_scope = |t: &Tag| {
        t.visibility != "disabled"
            && (t.channels.is_empty() || t.channels.contains(&facts.channel))
            && (t.subchannels.is_empty()
                || facts
                    .subchannel_id
                    .is_some_and(|s| t.subchannels.contains(&s)))
    };
    let mut out: Vec<(i64, &'static str)> = Vec::new();
    for t in tags.iter().filter(|t| in_scope(t)) {
        let by = |a: &str| t.assignment.iter().any(|x| x == a);
        let source = if by("assignBySubchannel")
            && facts.subchannel_id.is_some()
            && !t.subchannels.is_empty()
        {
            Some("subchannel")
        } else if let Some(cond) = t
            .detection_details
            .get("conditions")
            .and_then(|c| Condition::parse(c).ok())
            .filter(|c| c.eval(&ctx))
        {
            let roots = cond.roots();
            Some(if roots.contains(&"contract") {
                "contractProperty"
            } else if roots.contains(&"customer") {
                "customerProperty"
            } else {
                "ticketProperty"
            })
        } else if by("assignByAI")
            && t.detection_details
                .get("aiAgents")
                .and_then(Value::as_array)
                .is_some_and(|codes| {
                    codes
                        .iter()
                        .filter_map(Value::as_str)
                        .any(|c| facts.intent_codes.iter().any(|i| i == c))
                })
        {
            Some("ai")
        } else {
            None
        };
        if let Some(s) = source {
            out.push((t.id, s));
        }
    }
    let spam = facts
        .spam_status
        .as_deref()
        .is_some_and(|s| s.ends_with("_spam"));
    let has_skill = out
        .iter()
        .chain(
            facts
                .manual_tag_ids
                .iter()
                .map(|id| (*id, "manual"))
                .collect::<Vec<_>>()
                .iter(),
        )
        .any(|(id, _)| tags.iter().any(|t| t.id == *id && t.kind == "skill"));
    if !has_skill && !spam {
        out.extend(
            tags.iter()
                .filter(|t| in_scope(t) && t.properties.iter().any(|p| p == "defaultSkill"))
                .map(|t| (t.id, "default")),
        );
    }
    out
}

/// The highest priority any of the tags sets (`do-not-change` sets none).
fn tag_priority<'a>(tags: impl Iterator<Item = &'a Tag>) -> Option<Priority> {
    tags.filter_map(|t| Priority::parse(&t.priority))
        .max_by_key(|p| p.rank())
}

/// The strictest SLA among the tags.
fn tag_sla<'a>(tags: impl Iterator<Item = &'a Tag>) -> Option<f64> {
    tags.filter_map(|t| t.sla).min_by(|a, b| a.total_cmp(b))
}

fn due(
    cal: &BusinessCalendar,
    start: DateTime<Utc>,
    hours: f64,
) -> Result<DateTime<Utc>, StageError> {
    cal.add_business_hours(start, hours)
        .map_err(StageError::permanent)
}

impl StageHandler for Router {
    const STAGE: Stage = Stage::Router;
    type Input = Envelope;

    fn key(input: &Envelope) -> WorkKey {
        envelope_key(input)
    }

    async fn process(&self, cx: &mut StageCx, input: &Envelope) -> Result<StageOutput, StageError> {
        let next = Some(input.clone());
        let ticket_id = input.ticket_id;
        // A ticket closed meanwhile (by a hook or an agent) is never queued.
        if matches!(
            cx.ticket_status(),
            Some(TicketStatus::Closed | TicketStatus::Resolved)
        ) {
            return Ok(StageOutput {
                ticket_id,
                message_id: input.message_id,
                outcome: json!({"result": "skipped", "reason": "ticket is closed"}),
                next,
            });
        }
        let message = tickets::message_text(cx.conn(), input.message_id).await?;
        let facts = routing::routing_facts(cx.conn(), ticket_id).await?;
        let all_tags = self.tags.snapshot().await;
        let assigned = assign_tags(&all_tags, &facts);
        let on_ticket: Vec<&Tag> = all_tags
            .iter()
            .filter(|t| {
                assigned.iter().any(|(id, _)| *id == t.id) || facts.manual_tag_ids.contains(&t.id)
            })
            .collect();
        let tagging = TicketTagging {
            auto: assigned
                .iter()
                .map(|(id, s)| (*id, (*s).to_owned()))
                .collect(),
            all: on_ticket.iter().map(|t| t.id).collect(),
            routing: on_ticket
                .iter()
                .filter(|t| t.routing_relevant && t.visibility != "disabled")
                .map(|t| t.id)
                .collect(),
        };
        cx.set_auto_tags(ticket_id, &tagging).await?;

        let cal = self.calendar().await?;
        // SLA clocks start when the customer wrote: the ticket for a first message, the
        // follow-up for a reply.
        let start = message.created_at;
        let sla = match tag_sla(on_ticket.iter().copied()) {
            Some(h) => h,
            None => self.settings.get_f64("defaultSlaHours").await?,
        };
        let first = self.first_response_hours(&facts.channel).await?;
        let patch = TicketPatch {
            due_by: Some(due(&cal, start, sla)?),
            first_response_due_by: Some(due(&cal, start, first)?),
            priority: tag_priority(on_ticket.iter().copied()),
            ..Default::default()
        };
        cx.patch_ticket(ticket_id, &patch).await?;
        cx.touch_customer_message(ticket_id, start).await?;

        let mut agent = None;
        if !message.is_first && self.settings.get_bool("lastAgentRouting").await? {
            if let Some(last) = facts.last_agent_id.filter(|_| !facts.last_agent_absent) {
                cx.assign_agent(ticket_id, Some(last)).await?;
                agent = Some(last);
            }
        }
        let tag_ids = &tagging.all;
        cx.emit(
            "TicketRouted",
            json!({"ticketId": ticket_id, "tagIds": tag_ids, "priority": patch.priority,
                   "dueBy": patch.due_by, "firstResponseDueBy": patch.first_response_due_by, "agentId": agent}),
        );
        Ok(StageOutput {
            ticket_id,
            message_id: input.message_id,
            outcome: json!({
                "result": "routed",
                "tags": assigned.iter().map(|(id, source)| json!({"id": id, "source": source})).collect::<Vec<_>>(),
                "slaHours": sla,
                "priority": patch.priority,
                "dueBy": patch.due_by,
                "firstResponseDueBy": patch.first_response_due_by,
                "agentId": agent,
            }),
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(id: i64, kind: &str) -> Tag {
        Tag {
            id,
            name: format!("tag{id}"),
            full_name: String::new(),
            parent: None,
            reference: "ticket".into(),
            kind: kind.into(),
            visibility: "public".into(),
            color: "grey".into(),
            properties: vec![],
            complexity: None,
            sla: None,
            priority: "do-not-change".into(),
            channels: vec![],
            subchannels: vec![],
            detection_details: json!({}),
            assignment: vec![],
            routing_relevant: true,
            test_case: json!({}),
            modified_by: None,
            modified_at: Utc::now(),
        }
    }

    fn facts() -> RoutingFacts {
        RoutingFacts {
            channel: "email".into(),
            subchannel_id: Some(3),
            spam_status: None,
            last_agent_id: None,
            last_agent_absent: false,
            ticket: json!({"channel": "email", "subject": "Abschlag"}),
            contract: Some(json!({"energy": "gas"})),
            customer: None,
            intent_codes: vec!["meter_reading".into()],
            manual_tag_ids: vec![],
        }
    }

    #[test]
    fn each_assignment_kind_and_the_default_fallback() {
        let mut by_sub = tag(1, "brand");
        by_sub.assignment = vec!["assignBySubchannel".into()];
        by_sub.subchannels = vec![3];
        let mut by_contract = tag(2, "skill");
        by_contract.detection_details = json!({"conditions": {"field": "contract.energy", "operator": "equals", "value": "gas"}});
        let mut by_ai = tag(3, "skill");
        by_ai.assignment = vec!["assignByAI".into()];
        by_ai.detection_details = json!({"aiAgents": ["meter_reading"]});
        let mut default = tag(4, "skill");
        default.properties = vec!["defaultSkill".into()];
        let mut chat_only = tag(5, "skill");
        chat_only.channels = vec!["chat".into()];
        chat_only.detection_details =
            json!({"conditions": {"field": "ticket.subject", "operator": "exists"}});
        let tags = vec![by_sub, by_contract, by_ai, default.clone(), chat_only];
        assert_eq!(
            assign_tags(&tags, &facts()),
            vec![(1, "subchannel"), (2, "contractProperty"), (3, "ai")]
        );
        // Nothing else matches: the defaultSkill tag.
        let mut f = facts();
        f.contract = None;
        f.intent_codes.clear();
        f.subchannel_id = None;
        assert_eq!(assign_tags(&tags, &f), vec![(4, "default")]);
        // Spam gets no default.
        f.spam_status = Some("auto_spam".into());
        assert_eq!(assign_tags(&tags, &f), vec![]);
    }

    #[test]
    fn highest_priority_and_strictest_sla_win() {
        let mut a = tag(1, "skill");
        a.priority = "high".into();
        a.sla = Some(8.0);
        let mut b = tag(2, "skill");
        b.priority = "urgent".into();
        b.sla = Some(32.0);
        let mut c = tag(3, "skill");
        c.sla = Some(2.0);
        let tags = [a, b, c];
        assert_eq!(tag_priority(tags.iter()), Some(Priority::Urgent));
        assert_eq!(tag_sla(tags.iter()), Some(2.0));
        assert_eq!(tag_priority(tags[2..].iter()), None);
    }
}
