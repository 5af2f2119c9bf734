import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import Database from 'better-sqlite3';

import { parseConfig } from '../src/config/app-config.js';
import { openMetadataStore, SQLITE_FILE_NAME } from '../src/metadata/metadata.module.js';
import { openPostgresMetadataStore } from '../src/metadata/postgres.js';
import { createTestDatabase, pgQuery, pgUnavailable } from './backends.js';
import { startApp, tempDir, type TestApp } from './helpers.js';

const ALL_MIGRATIONS = ['0001_metadata_table', '0002_analysis_tables', '0003_move_legacy_dumps'];

describe('PostgreSQL migrations', { skip: pgUnavailable }, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  async function database() {
    const db = await createTestDatabase();
    cleanups.push(db.drop);
    return db;
  }

  function databaseConfig(url: string, extra: Record<string, string> = {}) {
    return parseConfig((n) => ({ RTCSTATS_DATABASE_URL: url, ...extra })[n]).database;
  }

  it('collectors starting at the same instant on one empty database apply each migration once', async () => {
    const db = await database();
    const applied: string[][] = [];
    const open = () =>
      openPostgresMetadataStore({
        database: databaseConfig(db.url),
        hostIdentifier: null,
        onMigrated: (names) => applied.push(names),
      });
    const stores = await Promise.all(Array.from({ length: 12 }, open));
    try {
      assert.deepEqual(applied.flat().sort(), ALL_MIGRATIONS, 'every migration ran, and only once');
      const history = await pgQuery<{ name: string }>(db.url, 'select name from "rtcstats-server_migrations" order by name');
      assert.deepEqual(history.map((h) => h.name), ALL_MIGRATIONS);
      // All of them work on the one table.
      await Promise.all(stores.map((s, i) => s.insert(sampleRecord(`started-${i}`))));
      assert.equal((await stores[0].find({ conference: 'migrations' })).length, stores.length);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('two whole collectors booting together on one empty database both start', async () => {
    const db = await database();
    const env = { RTCSTATS_DATABASE_URL: db.url };
    const apps: TestApp[] = await Promise.all([startApp(env), startApp(env)]);
    try {
      const history = await pgQuery<{ n: string }>(db.url, 'select count(*) as n from "rtcstats-server_migrations"');
      assert.equal(Number(history[0].n), ALL_MIGRATIONS.length);
    } finally {
      for (const a of apps) {
        await a.close();
        fs.rmSync(a.dataDir, { recursive: true, force: true });
      }
    }
  });

  it('RTCSTATS_DATABASE_TABLE names the table (schema.table too) and its migration history', async () => {
    const db = await database();
    await pgQuery(db.url, 'create schema stats');
    const store = await openPostgresMetadataStore({ database: databaseConfig(db.url, { RTCSTATS_DATABASE_TABLE: 'stats.dumps-v2' }), hostIdentifier: 'h' });
    try {
      await store.insert(sampleRecord('custom-table'));
      const rows = await pgQuery<{ rtcstats_user: string }>(db.url, 'select rtcstats_user from stats."dumps-v2"');
      assert.deepEqual(rows.map((r) => r.rtcstats_user), ['custom-table']);
      const tables = await pgQuery<{ table_name: string }>(
        db.url,
        "select table_name from information_schema.tables where table_schema = 'stats' order by table_name",
      );
      assert.deepEqual(tables.map((t) => t.table_name), [
        'dumps-v2',
        'dumps-v2_migration_lock',
        'dumps-v2_migrations',
        'rtcstats_analysis',
        'rtcstats_observations',
      ]);
    } finally {
      await store.close();
    }
  });

  it("refuses a reference table from before its bigint id, naming the fix, and changes nothing", async () => {
    const db = await database();
    await pgQuery(db.url, `create table "rtcstats-server" (id uuid primary key default gen_random_uuid(), created_at timestamptz not null default now())`);
    await assert.rejects(
      openPostgresMetadataStore({ database: databaseConfig(db.url), hostIdentifier: null }),
      /0001_metadata_table failed: table rtcstats-server has an id of type uuid: apply the reference server's migration .*rename_id/,
    );
    const columns = await pgQuery(db.url, `select column_name from information_schema.columns where table_name = 'rtcstats-server'`);
    assert.equal(columns.length, 2, 'the failed migration was rolled back');
  });

  it('a TLS mode the server cannot meet fails the boot with the reason, without the connection string', async () => {
    const db = await database();
    const url = db.url.replace('postgres@', 'postgres:s3cret-password@');
    await assert.rejects(
      openPostgresMetadataStore({ database: databaseConfig(url, { RTCSTATS_DATABASE_SSL_MODE: 'require' }), hostIdentifier: null }),
      (err: Error) => {
        assert.match(err.message, /^PostgreSQL metadata database: .*SSL/i);
        assert.ok(!err.message.includes('s3cret'), err.message);
        return true;
      },
    );
  });
});

describe('SQLite: records of earlier versions (table `dumps`)', () => {
  it('are moved into the new table once, and `dumps` is dropped', async () => {
    const dataDir = tempDir();
    try {
      const file = path.join(dataDir, SQLITE_FILE_NAME);
      // The embedded schema as earlier versions created it.
      const legacy = new Database(file);
      legacy.exec(`
        create table "kysely_migration" ("name" varchar(255) not null primary key, "timestamp" varchar(255) not null);
        create table "kysely_migration_lock" ("id" varchar(255) not null primary key, "is_locked" integer default 0 not null);
        insert into kysely_migration values ('0001_dumps', '2026-11-01T00:00:00.000Z');
        create table "dumps" ("id" varchar(64) primary key, "start_time" bigint not null, "end_time" bigint not null,
          "close_code" integer not null, "frame_count" integer not null, "bytes" bigint not null, "location" text not null,
          "rtcstats_user" text, "rtcstats_session" text, "rtcstats_conference" text, "kid" varchar(64), "origin" text,
          "user_agent" text, "client_protocol" text, "path" text not null, "remote_address" text);
        insert into kysely_migration values ('0002_jitsi_identity', '2026-11-02T00:00:00.000Z');
        alter table "dumps" add column "stats_session_id" text;
        alter table "dumps" add column "conference_name" text;
        alter table "dumps" add column "display_name" text;
        alter table "dumps" add column "meeting_id" text;`);
      const ids = [crypto.randomUUID(), crypto.randomUUID()];
      const insert = legacy.prepare('insert into dumps values (?, ?, ?, 1000, 7, 1234, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
      insert.run(ids[0], 1764316800123, 1764317100456, '/d/a.jsonl.gz', 'u', 's', 'c', 'k1', 'https://o', 'UA', 'rtcstats#5.0', '/p', '203.0.113.x', 'jitsi-1', null, null, 'm-1');
      insert.run(ids[1], 1764316900000, 1764316901000, '/d/b.jsonl.gz', null, null, null, null, null, null, null, '/', null, null, null, null, null);
      legacy.close();

      const config = parseConfig((n) => ({ RTCSTATS_DATA_DIR: dataDir, RTCSTATS_HOST_IDENTIFIER: 'h' })[n]);
      const store = await openMetadataStore(config);
      try {
        const a = await store.get(ids[0]);
        assert.deepEqual(
          { ...a, rowId: undefined, createdAt: undefined },
          {
            id: ids[0],
            rowId: undefined,
            createdAt: undefined,
            startTime: 1764316800123,
            endTime: 1764317100456,
            closeCode: 1000,
            frameCount: 7,
            bytes: 1234,
            location: '/d/a.jsonl.gz',
            user: 'u',
            session: 's',
            conference: 'c',
            kid: 'k1',
            origin: 'https://o',
            userAgent: 'UA',
            clientProtocol: 'rtcstats#5.0',
            path: '/p',
            remoteAddress: '203.0.113.x',
            hostIdentifier: null,
            embedUrl: null,
            statsSessionId: 'jitsi-1',
            conferenceName: null,
            displayName: null,
            meetingId: 'm-1',
          },
        );
        assert.equal(a!.createdAt, 1764317100456, 'created_at of a moved record is its end time');
        assert.equal((await store.get(ids[1]))!.user, null);
      } finally {
        await store.close();
      }
      const after = new Database(file, { readonly: true });
      const tables = after.prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name").all();
      after.close();
      assert.deepEqual(
        tables.map((t) => (t as { name: string }).name),
        ['rtcstats-server', 'rtcstats-server_migration_lock', 'rtcstats-server_migrations', 'rtcstats_analysis', 'rtcstats_observations'],
      );
      // Opening again applies nothing and keeps the records.
      const again = await openMetadataStore(config);
      assert.equal((await again.find({}, 10)).length, 2);
      await again.close();
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

function sampleRecord(user: string) {
  return {
    id: crypto.randomUUID(),
    startTime: Date.now() - 1000,
    endTime: Date.now(),
    closeCode: 1000,
    frameCount: 1,
    bytes: 10,
    location: 'x',
    user,
    session: null,
    conference: 'migrations',
    kid: null,
    origin: null,
    userAgent: null,
    clientProtocol: null,
    path: '/',
    remoteAddress: null,
  };
}
