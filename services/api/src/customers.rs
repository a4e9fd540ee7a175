//! Customer and contract look-ups (the ERP mirror) and a ticket's conversation.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_domain::Permission;
use switchyard_store::customers::{self, Lookup};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;
use crate::tickets::parse_ticket_id;
use crate::{ApiState, Page};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(search_customers))
        .routes(routes!(customer_by_id))
        .routes(routes!(customer_by_contract))
        .routes(routes!(customer_by_ticket))
        .routes(routes!(get_contract))
        .routes(routes!(conversation))
        .routes(routes!(import_customers))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// Customer or contract id, name, e-mail, address or meter number (two characters at least
    /// besides spaces).
    #[param(pattern = "\\S[\\s\\S]*\\S")]
    q: String,
}

#[derive(Serialize, ToSchema)]
struct CustomerList {
    success: bool,
    total: i64,
    limit: i64,
    offset: i64,
    #[schema(value_type = Vec<Object>)]
    customers: Vec<Value>,
}

/// Search customers
#[utoipa::path(get, path = "/api/mind/customer/search", tag = "customer", params(SearchQuery, Page),
    responses((status = 200, body = CustomerList), (status = 400, body = crate::Problem)))]
async fn search_customers(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<SearchQuery>,
    crate::extract::ApiQuery(page): crate::extract::ApiQuery<Page>,
) -> ApiResult<Json<CustomerList>> {
    auth.require(Permission::ReadTickets)?;
    let (limit, offset) = page.resolve()?;
    let q = q.q.trim();
    // Spaces as the document's `\s` counts them (Unicode's, plus the separators U+001C..U+001F).
    let visible = q
        .chars()
        .filter(|c| !c.is_whitespace() && !('\u{1c}'..='\u{1f}').contains(c))
        .count();
    if visible < 2 {
        return Err(ApiError::field("q", "needs at least two characters"));
    }
    let mut conn = state.store.pool().acquire().await?;
    let (customers, total) = customers::search(&mut conn, q, limit, offset).await?;
    Ok(Json(CustomerList {
        success: true,
        total,
        limit,
        offset,
        customers,
    }))
}

/// Get a customer by customer id (`emailMatches` is null: there is no sender to compare)
#[utoipa::path(get, path = "/api/mind/customer/byCustomerId/{customerId}", tag = "customer",
    params(("customerId" = i64, Path)), responses((status = 200, body = Object), (status = 404, body = crate::Problem)))]
async fn customer_by_id(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    lookup(
        &state,
        &auth,
        Lookup::Customer(crate::path_id("customerId", &id)?),
    )
    .await
}

/// Get the customer of a contract
#[utoipa::path(get, path = "/api/mind/customer/byContractId/{contractId}", tag = "customer",
    params(("contractId" = i64, Path)), responses((status = 200, body = Object), (status = 404, body = crate::Problem)))]
async fn customer_by_contract(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    lookup(
        &state,
        &auth,
        Lookup::CustomerOfContract(crate::path_id("contractId", &id)?),
    )
    .await
}

/// Get the customer of a ticket (`emailMatches`: the sender is the customer's address on record)
#[utoipa::path(get, path = "/api/mind/customer/byTicketId/{ticketId}", tag = "customer",
    params(("ticketId" = i64, Path)), responses((status = 200, body = Object), (status = 404, body = crate::Problem)))]
async fn customer_by_ticket(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    lookup(
        &state,
        &auth,
        Lookup::CustomerOfTicket(parse_ticket_id(&id)?),
    )
    .await
}

/// Get a contract
#[utoipa::path(get, path = "/api/mind/contract/{contractId}", tag = "customer",
    params(("contractId" = i64, Path)), responses((status = 200, body = Object), (status = 404, body = crate::Problem)))]
async fn get_contract(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    lookup(
        &state,
        &auth,
        Lookup::Contract(crate::path_id("contractId", &id)?),
    )
    .await
}

/// Read permission, one look-up, 404 when it finds nothing.
async fn lookup(state: &ApiState, auth: &Auth, what: Lookup) -> ApiResult<Json<Value>> {
    auth.require(Permission::ReadTickets)?;
    let mut conn = state.store.pool().acquire().await?;
    customers::lookup(&mut conn, what)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(what.to_string()))
}

#[derive(Serialize, ToSchema)]
struct Conversation {
    success: bool,
    #[schema(value_type = Vec<Object>)]
    conversation: Vec<Value>,
}

/// Get a ticket's conversation (its messages, oldest first)
#[utoipa::path(get, path = "/api/mind/ticket/{ticketId}/conversation", tag = "ticket",
    params(("ticketId" = i64, Path)), responses((status = 200, body = Conversation), (status = 404, body = crate::Problem)))]
async fn conversation(
    State(state): State<ApiState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Conversation>> {
    auth.require(Permission::ReadTickets)?;
    let id = parse_ticket_id(&id)?;
    let mut conn = state.store.pool().acquire().await?;
    let messages = customers::conversation(&mut conn, id).await?;
    if messages.is_empty()
        && switchyard_store::tickets::processing_flags(&mut conn, id)
            .await?
            .is_none()
    {
        return Err(ApiError::NotFound(format!("ticket {id}")));
    }
    Ok(Json(Conversation {
        success: true,
        conversation: messages,
    }))
}

#[derive(Serialize, ToSchema)]
struct Imported {
    success: bool,
    customers: u64,
    contracts: u64,
}

/// A customer of the import, as documented (the handler reads the JSON itself and keeps every
/// further field in `data`).
#[allow(dead_code)]
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
struct ImportCustomer {
    #[schema(minimum = 1)]
    id: i64,
    email: Option<String>,
    firstname: Option<String>,
    lastname: Option<String>,
    company: Option<String>,
    business: Option<bool>,
    address: Option<String>,
    phone: Option<String>,
    contracts: Option<Vec<ImportContract>>,
}

#[allow(dead_code)]
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
struct ImportContract {
    #[schema(minimum = 1)]
    id: i64,
    status: Option<String>,
    #[schema(pattern = "^(electricity|gas)$")]
    energy: Option<String>,
    email: Option<String>,
    delivery_address: Option<String>,
    billing_address: Option<String>,
    iban: Option<String>,
    monthly_deposit: Option<f64>,
    counter_number: Option<String>,
    /// Unix seconds (years 1 to 9999).
    #[schema(minimum = -62135596800i64, maximum = 253402300799i64)]
    start_date: Option<i64>,
    /// Unix seconds (years 1 to 9999).
    #[schema(minimum = -62135596800i64, maximum = 253402300799i64)]
    end_date: Option<i64>,
}

/// Checks the fields the mirror relies on, naming the first bad one (`[3].contracts[0].id`).
fn validate_import(body: &Value) -> ApiResult<()> {
    let list = body
        .as_array()
        .ok_or_else(|| ApiError::field("body", "must be a JSON array of customers"))?;
    for (i, c) in list.iter().enumerate() {
        if !c.is_object() {
            return Err(ApiError::field(&format!("[{i}]"), "must be an object"));
        }
        if c.get("id")
            .is_none_or(|v| v.as_i64().is_none_or(|id| id <= 0))
        {
            return Err(ApiError::field(
                &format!("[{i}].id"),
                "must be a positive integer",
            ));
        }
        for key in [
            "email",
            "firstname",
            "lastname",
            "company",
            "address",
            "phone",
        ] {
            if c.get(key).is_some_and(|v| !v.is_null() && !v.is_string()) {
                return Err(ApiError::field(&format!("[{i}].{key}"), "must be a string"));
            }
        }
        if c.get("business")
            .is_some_and(|v| !v.is_null() && !v.is_boolean())
        {
            return Err(ApiError::field(
                &format!("[{i}].business"),
                "must be a boolean",
            ));
        }
        let contracts = match c.get("contracts") {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) => a,
            Some(_) => {
                return Err(ApiError::field(
                    &format!("[{i}].contracts"),
                    "must be an array",
                ))
            }
        };
        for (j, k) in contracts.iter().enumerate() {
            let field = format!("[{i}].contracts[{j}]");
            if k.get("id")
                .is_none_or(|v| v.as_i64().is_none_or(|id| id <= 0))
            {
                return Err(ApiError::field(
                    &format!("{field}.id"),
                    "must be a positive integer",
                ));
            }
            for key in [
                "status",
                "email",
                "deliveryAddress",
                "billingAddress",
                "iban",
                "counterNumber",
            ] {
                if k.get(key).is_some_and(|v| !v.is_null() && !v.is_string()) {
                    return Err(ApiError::field(
                        &format!("{field}.{key}"),
                        "must be a string",
                    ));
                }
            }
            if let Some(e) = k.get("energy").filter(|e| !e.is_null()) {
                if !matches!(e.as_str(), Some("electricity" | "gas")) {
                    return Err(ApiError::field(
                        &format!("{field}.energy"),
                        "must be electricity or gas",
                    ));
                }
            }
            for date in ["startDate", "endDate"] {
                let bad = k.get(date).is_some_and(|d| {
                    !d.is_null()
                        && d.as_i64().is_none_or(|s| {
                            !switchyard_domain::time::STORABLE_UNIX_SECONDS.contains(&s)
                        })
                });
                if bad {
                    return Err(ApiError::field(
                        &format!("{field}.{date}"),
                        "must be whole unix seconds between the years 1 and 9999",
                    ));
                }
            }
            if k.get("monthlyDeposit")
                .is_some_and(|d| !d.is_null() && !d.is_number())
            {
                return Err(ApiError::field(
                    &format!("{field}.monthlyDeposit"),
                    "must be a number",
                ));
            }
        }
    }
    Ok(())
}

/// Import customers and their contracts into the ERP mirror (a JSON array of customers in the
/// seed's shape, each with `contracts[]`); known ids are updated
#[utoipa::path(post, path = "/api/mind/customer/import", tag = "customer", request_body = Vec<ImportCustomer>,
    responses((status = 200, body = Imported), (status = 403, body = crate::Problem)))]
async fn import_customers(
    State(state): State<ApiState>,
    auth: Auth,
    crate::extract::ApiJson(body): crate::extract::ApiJson<Value>,
) -> ApiResult<Json<Imported>> {
    let user = auth.require(Permission::UpdateClientSettings)?;
    validate_import(&body)?;
    let mut tx = state.store.begin().await?;
    let (customers, contracts) = customers::import(&mut tx, &body).await?;
    switchyard_store::audit::record(
        &mut tx,
        &user.actor(),
        "customer",
        "import",
        "import",
        &serde_json::json!({"customers": customers, "contracts": contracts}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Imported {
        success: true,
        customers,
        contracts,
    }))
}
