-- The applications table, with the column names Sockudo uses, so an existing
-- Sockudo database works unchanged. `chorus migrate` runs this (with the table
-- name from database.mysql.table_name) and adds missing columns to an older table.
CREATE TABLE IF NOT EXISTS `applications` (
  `id` VARCHAR(255) PRIMARY KEY,
  `key` VARCHAR(255) UNIQUE NOT NULL,
  `secret` VARCHAR(255) NOT NULL,
  `max_connections` INT UNSIGNED NOT NULL DEFAULT 0,
  `enable_client_messages` BOOLEAN NOT NULL DEFAULT FALSE,
  `enabled` BOOLEAN NOT NULL DEFAULT TRUE,
  `max_backend_events_per_second` INT UNSIGNED NULL,
  `max_client_events_per_second` INT UNSIGNED NOT NULL DEFAULT 10,
  `max_read_requests_per_second` INT UNSIGNED NULL,
  `max_presence_members_per_channel` INT UNSIGNED NULL,
  `max_presence_member_size_in_kb` INT UNSIGNED NULL,
  `max_channel_name_length` INT UNSIGNED NULL,
  `max_event_channels_at_once` INT UNSIGNED NULL,
  `max_event_name_length` INT UNSIGNED NULL,
  `max_event_payload_in_kb` INT UNSIGNED NULL,
  `max_event_batch_size` INT UNSIGNED NULL,
  `enable_user_authentication` BOOLEAN NULL,
  `enable_watchlist_events` BOOLEAN NULL,
  `webhooks` JSON NULL,
  `allowed_origins` JSON NULL,
  `created_at` TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  `updated_at` TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
