//! Who wrote: the customer and contract in the ERP mirror, and how sure we are
//! (`customerLegitimation`, the seed's score table). Dark processing needs at least 20.
//!
//! Score table: 20 sender e-mail matches the contract's or customer's; 15 contract and customer
//! number in the message; 13 one of them plus the customer's last name; 12 contract found but
//! the sender is unknown to the ERP; 10 contract found otherwise; 0 nothing found. Ties between
//! contracts give no contract: guessing would show one customer another's data.

use std::collections::BTreeSet;

use switchyard_nlp::identify::Identifiers;
use switchyard_store::customers::{self, Match};
use switchyard_store::PgConnection;

/// The result of identification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identified {
    pub customer_id: Option<i64>,
    pub contract_id: Option<i64>,
    pub legitimation: i32,
    /// How it was found, for the activity log.
    pub how: &'static str,
}

fn email_matches(m: &Match, email: &str) -> bool {
    let e = email.to_lowercase();
    m.customer_email
        .as_deref()
        .is_some_and(|c| c.to_lowercase() == e)
        || m.contract_email
            .as_deref()
            .is_some_and(|c| c.to_lowercase() == e)
}

fn mentions_lastname(text: &str, m: &Match) -> bool {
    let Some(last) = m.lastname.as_deref().filter(|l| l.len() >= 2) else {
        return false;
    };
    let lower = text.to_lowercase();
    let last = last.to_lowercase();
    lower.match_indices(&last).any(|(at, _)| {
        let before = lower[..at].chars().next_back();
        let after = lower[at + last.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Finds the customer and contract of a message.
pub async fn identify(
    conn: &mut PgConnection,
    from: Option<&str>,
    text: &str,
    ids: &Identifiers,
) -> switchyard_store::Result<Identified> {
    let from = from.map(str::trim).filter(|f| f.contains('@'));
    let by_sender = match from {
        Some(f) => customers::by_email(conn, f).await?,
        None => Vec::new(),
    };
    let mut by_text: Vec<Match> = Vec::new();
    for id in &ids.contract_numbers {
        by_text.extend(customers::by_contract_id(conn, *id).await?);
    }
    for m in &ids.meter_numbers {
        by_text.extend(customers::by_meter(conn, m).await?);
    }
    let mut customer_numbers: Vec<Match> = Vec::new();
    for id in &ids.customer_numbers {
        customer_numbers.extend(customers::by_customer_id(conn, *id).await?);
    }
    for e in ids.emails.iter().filter(|e| Some(e.as_str()) != from) {
        by_text.extend(customers::by_email(conn, e).await?);
    }

    let contracts_of =
        |list: &[Match]| -> BTreeSet<i64> { list.iter().filter_map(|m| m.contract_id).collect() };
    let sender_customers: BTreeSet<i64> = by_sender.iter().map(|m| m.customer_id).collect();
    let text_contracts = contracts_of(&by_text);
    let number_customers: BTreeSet<i64> = customer_numbers.iter().map(|m| m.customer_id).collect();

    // The contract: what the text names, within the sender's contracts when the sender is known.
    let chosen: Option<&Match> = if sender_customers.len() == 1 {
        let own: Vec<&Match> = by_sender
            .iter()
            .filter(|m| m.contract_id.is_some())
            .collect();
        let named: Vec<&&Match> = own
            .iter()
            .filter(|m| m.contract_id.is_some_and(|c| text_contracts.contains(&c)))
            .collect();
        match (named.len(), own.len()) {
            (1, _) => Some(*named[0]),
            (0, 1) => Some(own[0]),
            _ => None,
        }
    } else if text_contracts.len() == 1 {
        by_text.iter().find(|m| m.contract_id.is_some())
    } else if number_customers.len() == 1 {
        let own: Vec<&Match> = customer_numbers
            .iter()
            .filter(|m| m.contract_id.is_some())
            .collect();
        (own.len() == 1).then(|| own[0])
    } else {
        None
    };

    let Some(m) = chosen else {
        // A known sender with several contracts: the customer is known, the contract is not.
        if sender_customers.len() == 1 {
            return Ok(Identified {
                customer_id: sender_customers.first().copied(),
                contract_id: None,
                legitimation: 0,
                how: "senderEmail, several contracts",
            });
        }
        return Ok(Identified {
            how: "none",
            ..Identified::default()
        });
    };
    let contract_named = m
        .contract_id
        .is_some_and(|c| ids.contract_numbers.contains(&c));
    let customer_named = ids.customer_numbers.contains(&m.customer_id);
    let (legitimation, how) = if from.is_some_and(|f| email_matches(m, f)) {
        (20, "senderEmail")
    } else if contract_named && customer_named {
        (15, "contractAndCustomerNumber")
    } else if (contract_named || customer_named) && mentions_lastname(text, m) {
        (13, "numberAndLastname")
    } else if by_sender.is_empty() {
        (12, "senderUnknown")
    } else {
        (10, "found")
    };
    Ok(Identified {
        customer_id: Some(m.customer_id),
        contract_id: m.contract_id,
        legitimation,
        how,
    })
}
