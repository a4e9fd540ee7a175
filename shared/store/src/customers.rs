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

/// Imports customers with their `contracts[]` in the seed's shape (contract dates as unix
/// seconds), updating those already known by id. Fields we have no column for are kept in
/// `data` and returned as they came. One statement per table: an import of thousands is one
/// round trip each, all or nothing in the caller's transaction.
pub async fn import(conn: &mut PgConnection, customers: &Value) -> Result<(u64, u64)> {
    let customers_done = sqlx::query(
        "INSERT INTO customers (id, email, firstname, lastname, company, business, address, phone, data)
         SELECT (c->>'id')::bigint, c->>'email', c->>'firstname', c->>'lastname', c->>'company',
                coalesce((c->>'business')::boolean, false), c->>'address', c->>'phone',
                c - ARRAY['id','email','firstname','lastname','company','business','address','phone',
                          'contracts','emailMatches','tags']
           FROM (SELECT DISTINCT ON ((c->>'id')::bigint) c
                   FROM jsonb_array_elements($1) WITH ORDINALITY AS e(c, n)
                  ORDER BY (c->>'id')::bigint, n DESC) last_of_each
         ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, firstname = EXCLUDED.firstname,
                lastname = EXCLUDED.lastname, company = EXCLUDED.company, business = EXCLUDED.business,
                address = EXCLUDED.address, phone = EXCLUDED.phone, data = EXCLUDED.data,
                modified_at = now()",
    )
    .bind(customers)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let contracts_done = sqlx::query(
        "INSERT INTO contracts (id, customer_id, status, energy, email, delivery_address, billing_address,
                               iban, monthly_deposit, counter_number, start_date, end_date, data)
         SELECT (k->>'id')::bigint, (c->>'id')::bigint, coalesce(k->>'status', 'active'),
                coalesce(k->>'energy', 'electricity'), k->>'email', k->>'deliveryAddress',
                k->>'billingAddress', k->>'iban', (k->>'monthlyDeposit')::numeric, k->>'counterNumber',
                to_timestamp((k->>'startDate')::double precision),
                to_timestamp((k->>'endDate')::double precision),
                k - ARRAY['id','customerId','status','energy','email','deliveryAddress','billingAddress',
                          'iban','monthlyDeposit','counterNumber','startDate','endDate']
           FROM (SELECT DISTINCT ON ((k->>'id')::bigint) c, k
                   FROM jsonb_array_elements($1) WITH ORDINALITY AS e(c, n),
                        jsonb_array_elements(CASE jsonb_typeof(c->'contracts') WHEN 'array' THEN c->'contracts' ELSE '[]' END) WITH ORDINALITY AS f(k, m)
                  ORDER BY (k->>'id')::bigint, n DESC, m DESC) last_of_each
         ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
                energy = EXCLUDED.energy, email = EXCLUDED.email, delivery_address = EXCLUDED.delivery_address,
                billing_address = EXCLUDED.billing_address, iban = EXCLUDED.iban,
                monthly_deposit = EXCLUDED.monthly_deposit, counter_number = EXCLUDED.counter_number,
                start_date = EXCLUDED.start_date, end_date = EXCLUDED.end_date, data = EXCLUDED.data,
                modified_at = now()",
    )
    .bind(customers)
    .execute(conn)
    .await?
    .rows_affected();
    Ok((customers_done, contracts_done))
}

/// A contract or customer an identifier in a mail points at.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Match {
    pub customer_id: i64,
    pub contract_id: Option<i64>,
    pub lastname: Option<String>,
    pub customer_email: Option<String>,
    pub contract_email: Option<String>,
}

const MATCH_SQL: &str = "SELECT cu.id AS customer_id, c.id AS contract_id, cu.lastname,
        cu.email AS customer_email, c.email AS contract_email
   FROM customers cu LEFT JOIN contracts c ON c.customer_id = cu.id";

/// Customers (with each of their contracts) whose or whose contract's e-mail is `email`.
pub async fn by_email(conn: &mut PgConnection, email: &str) -> Result<Vec<Match>> {
    Ok(sqlx::query_as(&format!(
        "{MATCH_SQL} WHERE lower(cu.email) = lower($1) OR lower(c.email) = lower($1) ORDER BY cu.id, c.id"
    ))
    .bind(email)
    .fetch_all(conn)
    .await?)
}

/// The customer's contracts (or the customer alone when it has none).
pub async fn by_customer_id(conn: &mut PgConnection, id: i64) -> Result<Vec<Match>> {
    Ok(
        sqlx::query_as(&format!("{MATCH_SQL} WHERE cu.id = $1 ORDER BY c.id"))
            .bind(id)
            .fetch_all(conn)
            .await?,
    )
}

pub async fn by_contract_id(conn: &mut PgConnection, id: i64) -> Result<Vec<Match>> {
    Ok(sqlx::query_as(&format!("{MATCH_SQL} WHERE c.id = $1"))
        .bind(id)
        .fetch_all(conn)
        .await?)
}

/// Contracts whose meter is `meter` (spaces and case ignored).
pub async fn by_meter(conn: &mut PgConnection, meter: &str) -> Result<Vec<Match>> {
    Ok(sqlx::query_as(&format!(
        "{MATCH_SQL} WHERE upper(replace(c.counter_number, ' ', '')) = upper(replace($1, ' ', ''))"
    ))
    .bind(meter)
    .fetch_all(conn)
    .await?)
}

/// The ticket's messages, oldest first.
pub async fn conversation(conn: &mut PgConnection, ticket_id: i64) -> Result<Vec<Value>> {
    Ok(sqlx::query_scalar(
        "SELECT jsonb_build_object('id', m.id, 'ticketId', m.ticket_id, 'direction', m.direction,
                'from', m.from_addr, 'fromName', m.from_name, 'to', to_jsonb(m.to_addrs),
                'subject', m.subject, 'body', m.body, 'bodyPlain', m.body_plain,
                'private', m.direction = 'internal', 'messageId', m.mail_message_id,
                'sendStatus', m.send_status, 'createdBy', m.created_by,
                'sentAt', to_char(m.sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                'createdAt', to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))
           FROM messages m WHERE m.ticket_id = $1 ORDER BY m.created_at, m.id",
    )
    .bind(ticket_id)
    .fetch_all(conn)
    .await?)
}
