-- Up Migration

-- Participant search that finds what organisers type: part of a name ("schm" finds Schmidt), an
-- e-mail domain ("example.org"), and a name without its accents ("muller" finds Müller, "jose"
-- finds José). Trigram matching (pg_trgm) over the name and e-mail with their accents removed
-- (unaccent), both in Postgres' contrib and trusted extensions.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- unaccent() is only STABLE (its dictionary could change), which an index refuses: this names the
-- dictionary, so the same text always gives the same result
CREATE FUNCTION participant_search_text(name text, email text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, coalesce(name, '') || ' ' || coalesce(email, ''))) $$;

CREATE INDEX participants_search_trgm ON participants
  USING gin (participant_search_text(name, email) gin_trgm_ops);
-- (the full-text index stays: whole English words, for tools that query it)

-- Down Migration
DROP INDEX participants_search_trgm;
DROP FUNCTION participant_search_text(text, text);
