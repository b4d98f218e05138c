-- Media messages (issue 12): an image, audio, video or file message has
-- content_kind image, audio, video or file, its content is the protojson of
-- its clientpb.Media (so History rebuilds it whole), and these columns hold
-- the upload's fields for queries. Other messages leave them empty (0 for
-- media_size).
--
-- ClickHouse 18.16 does not know ADD COLUMN IF NOT EXISTS: Migrate runs each
-- such statement only when system.columns lacks the column (and without
-- the IF NOT EXISTS), so existing archives upgrade and a second run changes
-- nothing; current releases could run the file as it is. One column per
-- statement.

ALTER TABLE messages ADD COLUMN IF NOT EXISTS media_file_id String;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS media_mime String;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS media_size UInt64;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS media_sha256 String;
