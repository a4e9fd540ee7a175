-- Demo ERP mirror: the seed's customer and contract, and a second household. Idempotent.
INSERT INTO customers (id, email, firstname, lastname, address, phone, data)
VALUES (83771, 'tom@mustermann.de', 'Tom', 'Mustermann', 'Hugo-Junkers-Str. 5', '49123456789', '{}'),
       (83772, 'erika@example.org', 'Erika', 'Musterfrau', 'Lindenweg 3, 10115 Berlin', NULL, '{}')
ON CONFLICT (id) DO NOTHING;

INSERT INTO contracts (id, customer_id, status, energy, email, delivery_address, billing_address, iban,
                       monthly_deposit, counter_number, start_date, data)
VALUES (746839, 83771, 'active', 'electricity', 'tom@mustermann.de', 'Hugo-Junkers-Str. 5, 82031 Grünwald',
        'Rechnungssstraße 24, 10587 Berlin', 'DE89370400440532013000', 53, '1ESY1160669167',
        to_timestamp(1661990400), '{"productName": "Flex 24", "productCode": "flx_24"}'),
       (746840, 83772, 'active', 'gas', 'erika@example.org', 'Lindenweg 3, 10115 Berlin', NULL,
        'DE02120300000000202051', 78, '7GAS0042', to_timestamp(1672531200), '{"productName": "Gas Klassik"}')
ON CONFLICT (id) DO NOTHING;
