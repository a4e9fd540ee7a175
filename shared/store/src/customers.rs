//! The ERP mirror: customers and contracts in the seed's JSON shape (contract dates as unix
//! seconds), and the conversation of a ticket.

use serde_json::Value;
use sqlx::PgConnection;

use crate::Result;

const CONTRACT_JSON: &str = "jsonb_build_object(
        'id', c.id, 'customerId', c.customer_id, 'status', c.status, 'energy', c.energy,
        'email', c.email, 'deliveryAddress', c.delivery_address, 'billingAddress', c.billing_address,
        'iban', c.iban, 'monthlyDeposit', c.monthly_deposit, 'counterNumber', c.counter_number,
        'startDate', extract(epoch FROM c.start_date)::bigint, 'endDate', extract(epoch FROM c.end_date)::bigint
    ) || c.data";

fn customer_sql(filter: &str) -> String {
    format!(
        "SELECT jsonb_build_object(
                'id', cu.id, 'emailMatches', NULL, 'business', cu.business, 'company', cu.company,
                'firstname', cu.firstname, 'lastname', cu.lastname, 'address', cu.address,
                'phone', cu.phone, 'email', cu.email, 'tags', '[]'::jsonb,
                'contracts', coalesce((SELECT jsonb_agg({CONTRACT_JSON} ORDER BY c.id)
                                         FROM contracts c WHERE c.customer_id = cu.id), '[]'::jsonb)
            ) || cu.data
           FROM customers cu WHERE {filter}"
    )
}

/// What the customer and contract endpoints look up.
#[derive(Debug, Clone, Copy)]
pub enum Lookup {
    Customer(i64),
    CustomerOfContract(i64),
    CustomerOfTicket(i64),
    Contract(i64),
}

impl std::fmt::Display for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lookup::Customer(id) => write!(f, "customer {id}"),
            Lookup::CustomerOfContract(id) | Lookup::Contract(id) => write!(f, "contract {id}"),
            Lookup::CustomerOfTicket(id) => write!(f, "customer of ticket {id}"),
        }
    }
}

pub async fn lookup(conn: &mut PgConnection, what: Lookup) -> Result<Option<Value>> {
    match what {
        Lookup::Customer(id) => by_id(conn, id).await,
        Lookup::CustomerOfContract(id) => by_contract(conn, id).await,
        Lookup::CustomerOfTicket(id) => by_ticket(conn, id).await,
        Lookup::Contract(id) => contract(conn, id).await,
    }
}

pub async fn by_id(conn: &mut PgConnection, id: i64) -> Result<Option<Value>> {
    Ok(sqlx::query_scalar(&customer_sql("cu.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

pub async fn by_contract(conn: &mut PgConnection, contract_id: i64) -> Result<Option<Value>> {
    Ok(sqlx::query_scalar(&customer_sql(
        "cu.id = (SELECT customer_id FROM contracts WHERE id = $1)",
    ))
    .bind(contract_id)
    .fetch_optional(conn)
    .await?)
}

/// The ticket's customer, with `emailMatches` telling whether the sender is the customer's
/// address on record.
pub async fn by_ticket(conn: &mut PgConnection, ticket_id: i64) -> Result<Option<Value>> {
    let row: Option<(Option<i64>, Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT customer_id, contract_id, from_addr FROM tickets WHERE id = $1")
            .bind(ticket_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((customer_id, contract_id, from)) = row else {
        return Ok(None);
    };
    let customer = match (customer_id, contract_id) {
        (Some(c), _) => by_id(conn, c).await?,
        (None, Some(k)) => by_contract(conn, k).await?,
        (None, None) => None,
    };
    Ok(customer.map(|mut c| {
        let matches = match (c.get("email").and_then(Value::as_str), from.as_deref()) {
            (Some(e), Some(f)) => f.to_lowercase().contains(&e.to_lowercase()),
            _ => false,
        };
        c["emailMatches"] = Value::Bool(matches);
        c
    }))
}

/// Customers whose id, name, e-mail, address, contract id or meter number match `q`
/// (case-insensitive; `q` is a bound parameter, never SQL).
pub async fn search(
    conn: &mut PgConnection,
    q: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Value>, i64)> {
    let filter = "cu.id::text = $1
        OR cu.email ILIKE '%' || $1 || '%'
        OR (cu.firstname || ' ' || cu.lastname) ILIKE '%' || $1 || '%'
        OR cu.address ILIKE '%' || $1 || '%'
        OR EXISTS (SELECT 1 FROM contracts c WHERE c.customer_id = cu.id
                    AND (c.id::text = $1 OR c.counter_number ILIKE $1 OR c.email ILIKE '%' || $1 || '%'))";
    let total: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) FROM customers cu WHERE {filter}"))
            .bind(q)
            .fetch_one(&mut *conn)
            .await?;
    let rows = sqlx::query_scalar(&format!(
        "{} ORDER BY cu.id LIMIT $2 OFFSET $3",
        customer_sql(filter)
    ))
    .bind(q)
    .bind(limit)
    .bind(offset)
    .fetch_all(conn)
    .await?;
    Ok((rows, total))
}

pub async fn contract(conn: &mut PgConnection, id: i64) -> Result<Option<Value>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT {CONTRACT_JSON} FROM contracts c WHERE c.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The ticket's messages, oldest first.
pub async fn conversation(conn: &mut PgConnection, ticket_id: i64) -> Result<Vec<Value>> {
    Ok(sqlx::query_scalar(
        "SELECT jsonb_build_object('id', m.id, 'ticketId', m.ticket_id, 'direction', m.direction,
                'from', m.from_addr, 'fromName', m.from_name, 'to', to_jsonb(m.to_addrs),
                'subject', m.subject, 'body', m.body, 'bodyPlain', m.body_plain,
                'createdAt', to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))
           FROM messages m WHERE m.ticket_id = $1 ORDER BY m.created_at, m.id",
    )
    .bind(ticket_id)
    .fetch_all(conn)
    .await?)
}
