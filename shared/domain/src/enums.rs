//! The ticket's enumerations, with the exact spellings of the seeds.

use serde::{Deserialize, Serialize};

/// Declares a string enum whose wire names are given explicitly, with `as_str`/`parse` for the
/// database (which stores the wire name, so SQL filters read like the API).
macro_rules! wire_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        // By hand: the derive cannot read a `rename` passed through this macro and would
        // document the Rust variant names instead of the wire names.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let doc: &[&str] = &[$($doc),*];
                let description = doc.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::NAMES.iter().copied()))
                    .description((!description.is_empty()).then_some(description))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire names, in the order of `ALL`.
            pub const NAMES: &'static [&'static str] = &[$($wire),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// Parses the wire name; `None` for anything else.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Where a ticket came from.
    Channel {
        Email = "email",
        Portal = "portal",
        Phone = "phone",
        Letter = "letter",
        System = "system",
        Chat = "chat",
        WalkIn = "walkIn",
    }
);

wire_enum!(
    /// Ticket life cycle. Every stage re-reads it: a ticket closed by someone else stays closed.
    TicketStatus {
        Open = "open",
        Pending = "pending",
        Resolved = "resolved",
        Closed = "closed",
        WaitingOnCustomer = "waitingOnCustomer",
        WaitingOnThirdParty = "waitingOnThirdParty",
    }
);

wire_enum!(
    Priority {
        Low = "low",
        Medium = "medium",
        High = "high",
        Urgent = "urgent",
    }
);

wire_enum!(
    /// How much of the ticket the AI handled: `automated` is dark processing (L5), `human` means a
    /// person must look at it (also set when processing failed).
    AiSupportLevel {
        Unprocessed = "unprocessed",
        Human = "human",
        Bot = "bot",
        Automated = "automated",
    }
);

wire_enum!(
    /// The ticketing-system interface a ticket arrived through.
    Interface {
        Internal = "internal",
        Freshdesk = "Freshdesk",
        Api = "api",
    }
);

wire_enum!(
    Sentiment {
        Positive = "positive",
        Neutral = "neutral",
        Negative = "negative",
    }
);

wire_enum!(
    /// Direction of one message of the conversation.
    Direction {
        In = "in",
        Out = "out",
        Internal = "internal",
    }
);

wire_enum!(
    ExtractionStatus {
        NotStarted = "notStarted",
        InProgress = "inProgress",
        Success = "success",
        Error = "error",
    }
);

wire_enum!(
    IntentStatus {
        Preview = "preview",
        Ready = "ready",
        Executed = "executed",
        Invalidated = "invalidated",
        Deleted = "deleted",
    }
);

wire_enum!(
    /// API roles. Permissions follow from the role (see `Permission`).
    Role {
        Admin = "admin",
        Agent = "agent",
    }
);

wire_enum!(
    /// Permission names of the reference product, where known.
    Permission {
        ReadTickets = "readTickets",
        UpdateTickets = "updateTickets",
        UpdateClientSettings = "updateClientSettings",
        ReadSecretSettings = "readSecretSettings",
        UpdateAiAgent = "updateAiAgent",
        EventHooks = "eventHooks",
        RunExecutors = "runExecutors",
        AiQualityCheck = "aiQualityCheck",
        ManageDeadLetters = "manageDeadLetters",
        ManageUsers = "manageUsers",
        ErasePersonalData = "erasePersonalData",
    }
);

impl Role {
    /// What a role may do. Agents work tickets; only admins change how the system behaves.
    pub fn permissions(self) -> &'static [Permission] {
        match self {
            Role::Admin => Permission::ALL,
            Role::Agent => &[Permission::ReadTickets, Permission::UpdateTickets],
        }
    }

    pub fn can(self, p: Permission) -> bool {
        self.permissions().contains(&p)
    }
}

impl Priority {
    /// Rank for "the highest wins" comparisons.
    pub fn rank(self) -> u8 {
        match self {
            Priority::Low => 0,
            Priority::Medium => 1,
            Priority::High => 2,
            Priority::Urgent => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_through_serde_and_parse() {
        for s in TicketStatus::ALL {
            let json = serde_json::to_string(s).expect("serialize");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(TicketStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(Channel::parse("walkIn"), Some(Channel::WalkIn));
        assert_eq!(Interface::parse("Freshdesk"), Some(Interface::Freshdesk));
        assert_eq!(Channel::parse("fax"), None);
    }

    #[test]
    fn the_openapi_schema_lists_the_wire_names() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(TicketStatus::schema()).expect("schema");
        let wire: Vec<&str> = TicketStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(schema["enum"], serde_json::json!(wire));
        assert!(schema["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Ticket life cycle.")));
        let schema = serde_json::to_value(Interface::schema()).expect("schema");
        assert!(schema["enum"]
            .as_array()
            .is_some_and(|e| e.contains(&serde_json::json!("Freshdesk"))));
    }

    #[test]
    fn agents_cannot_change_settings() {
        assert!(!Role::Agent.can(Permission::UpdateClientSettings));
        assert!(Role::Admin.can(Permission::UpdateClientSettings));
    }
}
