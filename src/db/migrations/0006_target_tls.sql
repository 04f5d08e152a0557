-- Per-target TLS checks for winrm/http targets over TLS: validate the certificate (the default),
-- or pin the SHA-256 fingerprint of its leaf certificate (uppercase AA:BB:… form), or check nothing.
alter table targets add column tls_verify boolean not null default true;
alter table targets add column tls_fingerprint text
  check (tls_fingerprint is null or tls_fingerprint ~ '^[0-9A-F]{2}(:[0-9A-F]{2}){31}$');
