//! The dark-processing gates, in the reference product's order: the first that fails stops
//! the ticket, and its name is what the ticket's activity shows. Pure, so the order and each
//! gate's edge are unit-tested without a database.

use serde::Serialize;
use switchyard_store::execution::TicketFacts;

/// One gate. The serialized name is what the activity and the API answer show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Gate {
    IntentsPresent,
    TicketOpen,
    NotSpam,
    ChannelAllowed,
    Inbound,
    AutoProcessingEnabled,
    AutoExecutable,
    SingleIntent,
    NoCustomerReply,
    Legitimation,
}

/// The legitimation a contract-bearing ticket needs before anything is done in the dark
/// (the reference product hard-codes 20: the sender's address is the contract's).
pub const MIN_LEGITIMATION: i32 = 20;

/// A ready intent and whether phase 1 found it safe to run without a person.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub intent_id: i64,
    pub ai_agent_id: Option<i64>,
    pub code: String,
    pub auto_executable: bool,
    /// Why not, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a caller relaxes (only the endpoint may; the pipeline never does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relax {
    pub multiple_intents: bool,
    pub with_replies: bool,
}

pub struct GateInput<'a> {
    pub facts: &'a TicketFacts,
    /// Active intents of any status (preview, ready, invalidated).
    pub active_intents: usize,
    /// The ready intents, or only the one of the agent the caller asked for.
    pub candidates: &'a [Candidate],
    /// The caller named one agent (`executeAgentId`).
    pub targeted: bool,
    pub auto_processing_enabled: bool,
    pub relax: Relax,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum Verdict {
    /// Every gate passed: this intent may run in the dark.
    Pass {
        intent_id: i64,
    },
    Stop {
        gate: Gate,
        reason: String,
    },
}

fn stop(gate: Gate, reason: impl Into<String>) -> Verdict {
    Verdict::Stop {
        gate,
        reason: reason.into(),
    }
}

/// Runs the gates in order.
pub fn evaluate(i: &GateInput<'_>) -> Verdict {
    let f = i.facts;
    if i.active_intents == 0 || (i.targeted && i.candidates.is_empty()) {
        let reason = if i.targeted {
            "the agent has no ready intent on this ticket"
        } else {
            "no AI agent was detected"
        };
        return stop(Gate::IntentsPresent, reason);
    }
    // A ticket that dark processing itself just closed stays open to the calls that execute
    // its other agents one after the other (the seed's hook); nothing else reopens it.
    let closed_by_us = i.targeted && f.status == "closed" && f.ai_support_level == "automated";
    if f.status != "open" && !closed_by_us {
        return stop(Gate::TicketOpen, format!("the ticket is {}", f.status));
    }
    if let Some(s) = f
        .spam_status
        .as_deref()
        .filter(|s| matches!(*s, "auto_spam" | "auto_programmatic" | "manual_spam"))
    {
        return stop(Gate::NotSpam, format!("spam status {s}"));
    }
    if matches!(f.channel.as_str(), "chat" | "phone") {
        return stop(
            Gate::ChannelAllowed,
            format!("{} tickets are never answered in the dark", f.channel),
        );
    }
    if f.direction != "in" {
        return stop(
            Gate::Inbound,
            format!("the ticket's direction is {}", f.direction),
        );
    }
    if !i.auto_processing_enabled {
        return stop(
            Gate::AutoProcessingEnabled,
            "automatic processing is switched off (enableAiAutoProcessing)",
        );
    }
    if let Some(c) = i.candidates.iter().find(|c| !c.auto_executable) {
        return stop(
            Gate::AutoExecutable,
            format!(
                "{} cannot run without a person: {}",
                c.code,
                c.reason.as_deref().unwrap_or("no recommended option")
            ),
        );
    }
    let executable: Vec<&Candidate> = i.candidates.iter().filter(|c| c.auto_executable).collect();
    let Some(first) = executable.first() else {
        return stop(Gate::AutoExecutable, "no intent is ready");
    };
    // Detected, not only ready: a mail with a second concern still missing a parameter is a
    // mail with several concerns.
    let detected = executable.len().max(i.active_intents);
    if detected > 1 && !i.relax.multiple_intents {
        return stop(
            Gate::SingleIntent,
            format!("{detected} AI agents were detected; only one is answered in the dark (allowMultipleIntents)"),
        );
    }
    if f.inbound_messages > 1 && !i.relax.with_replies {
        return stop(
            Gate::NoCustomerReply,
            "the customer has replied on this ticket; only the first mail is answered in the dark",
        );
    }
    if f.contract_id.is_some() && f.customer_legitimation < MIN_LEGITIMATION {
        return stop(
            Gate::Legitimation,
            format!(
                "legitimation {} is below {MIN_LEGITIMATION}",
                f.customer_legitimation
            ),
        );
    }
    Verdict::Pass {
        intent_id: first.intent_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> TicketFacts {
        TicketFacts {
            id: 1,
            status: "open".into(),
            spam_status: None,
            channel: "email".into(),
            direction: "in".into(),
            contract_id: Some(7),
            customer_id: Some(3),
            customer_legitimation: 20,
            ai_support_level: "unprocessed".into(),
            language_code: Some("de".into()),
            from_addr: Some("kunde@example.org".into()),
            inbound_messages: 1,
            last_customer_message_at: None,
        }
    }

    fn cand(id: i64, ok: bool) -> Candidate {
        Candidate {
            intent_id: id,
            ai_agent_id: Some(id),
            code: format!("agent{id}"),
            auto_executable: ok,
            reason: (!ok).then(|| "interaction".to_owned()),
        }
    }

    fn run(f: &TicketFacts, cands: &[Candidate], relax: Relax, targeted: bool) -> Verdict {
        evaluate(&GateInput {
            facts: f,
            active_intents: cands.len(),
            candidates: cands,
            targeted,
            auto_processing_enabled: true,
            relax,
        })
    }

    fn gate(v: Verdict) -> Option<Gate> {
        match v {
            Verdict::Stop { gate, .. } => Some(gate),
            Verdict::Pass { .. } => None,
        }
    }

    #[test]
    fn one_auto_executable_intent_passes() {
        assert_eq!(
            run(&facts(), &[cand(4, true)], Relax::default(), false),
            Verdict::Pass { intent_id: 4 }
        );
    }

    #[test]
    fn gates_stop_in_the_reference_order() {
        let mut f = facts();
        f.status = "closed".into();
        f.channel = "chat".into();
        // Both fail; the earlier gate is the one reported.
        assert_eq!(
            gate(run(&f, &[cand(1, true)], Relax::default(), false)),
            Some(Gate::TicketOpen)
        );
        assert_eq!(
            gate(run(&facts(), &[], Relax::default(), false)),
            Some(Gate::IntentsPresent)
        );
        let mut spam = facts();
        spam.spam_status = Some("auto_programmatic".into());
        assert_eq!(
            gate(run(&spam, &[cand(1, true)], Relax::default(), false)),
            Some(Gate::NotSpam)
        );
        let mut chat = facts();
        chat.channel = "phone".into();
        assert_eq!(
            gate(run(&chat, &[cand(1, true)], Relax::default(), false)),
            Some(Gate::ChannelAllowed)
        );
        let mut out = facts();
        out.direction = "out".into();
        assert_eq!(
            gate(run(&out, &[cand(1, true)], Relax::default(), false)),
            Some(Gate::Inbound)
        );
        let off = evaluate(&GateInput {
            facts: &facts(),
            active_intents: 1,
            candidates: &[cand(1, true)],
            targeted: false,
            auto_processing_enabled: false,
            relax: Relax::default(),
        });
        assert_eq!(gate(off), Some(Gate::AutoProcessingEnabled));
    }

    #[test]
    fn a_ticket_closed_by_dark_processing_takes_its_next_agent_only_when_named() {
        let mut f = facts();
        f.status = "closed".into();
        f.ai_support_level = "automated".into();
        let relax = Relax {
            multiple_intents: true,
            with_replies: true,
        };
        assert_eq!(
            run(&f, &[cand(2, true)], relax, true),
            Verdict::Pass { intent_id: 2 }
        );
        assert_eq!(
            gate(run(&f, &[cand(2, true)], relax, false)),
            Some(Gate::TicketOpen)
        );
        f.ai_support_level = "human".into();
        assert_eq!(
            gate(run(&f, &[cand(2, true)], relax, true)),
            Some(Gate::TicketOpen)
        );
    }

    #[test]
    fn one_unsafe_intent_stops_all() {
        assert_eq!(
            gate(run(
                &facts(),
                &[cand(1, true), cand(2, false)],
                Relax::default(),
                false
            )),
            Some(Gate::AutoExecutable)
        );
    }

    #[test]
    fn several_intents_need_allow_multiple() {
        let two = [cand(1, true), cand(2, true)];
        assert_eq!(
            gate(run(&facts(), &two, Relax::default(), false)),
            Some(Gate::SingleIntent)
        );
        let relax = Relax {
            multiple_intents: true,
            with_replies: false,
        };
        assert_eq!(
            run(&facts(), &two, relax, false),
            Verdict::Pass { intent_id: 1 }
        );
        // One agent named among several detected: still the multiple-intents gate.
        let only = [cand(2, true)];
        let v = evaluate(&GateInput {
            facts: &facts(),
            active_intents: 2,
            candidates: &only,
            targeted: true,
            auto_processing_enabled: true,
            relax: Relax::default(),
        });
        assert_eq!(gate(v), Some(Gate::SingleIntent));
    }

    #[test]
    fn a_reply_needs_allow_with_replies_and_each_flag_relaxes_only_its_gate() {
        let mut f = facts();
        f.inbound_messages = 2;
        let relax_multi = Relax {
            multiple_intents: true,
            with_replies: false,
        };
        assert_eq!(
            gate(run(&f, &[cand(1, true)], relax_multi, true)),
            Some(Gate::NoCustomerReply)
        );
        let relax_replies = Relax {
            multiple_intents: false,
            with_replies: true,
        };
        assert_eq!(
            run(&f, &[cand(1, true)], relax_replies, true),
            Verdict::Pass { intent_id: 1 }
        );
        assert_eq!(
            gate(run(
                &f,
                &[cand(1, true), cand(2, true)],
                relax_replies,
                false
            )),
            Some(Gate::SingleIntent)
        );
    }

    #[test]
    fn a_contract_needs_legitimation_20() {
        let mut f = facts();
        f.customer_legitimation = 15;
        let everything = Relax {
            multiple_intents: true,
            with_replies: true,
        };
        assert_eq!(
            gate(run(&f, &[cand(1, true)], everything, true)),
            Some(Gate::Legitimation)
        );
        f.contract_id = None;
        assert_eq!(
            run(&f, &[cand(1, true)], everything, true),
            Verdict::Pass { intent_id: 1 }
        );
    }
}
