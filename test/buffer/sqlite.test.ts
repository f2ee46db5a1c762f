import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { EventBuffer } from '../../src/buffer/buffer.js';
import { ParkedFile } from '../../src/buffer/parked.js';
import { TYPED_SQL } from '../../src/buffer/sqlite/seqs.js';
import { SqliteBuffer, type CommitMode } from '../../src/buffer/sqlite/store.js';
import { tempDir } from '../helpers/tmp.js';
import { incoming, runBufferContract } from './contract.js';
import { runParkedContract } from './parked-contract.js';

for (const commitMode of ['group', 'each'] as CommitMode[]) {
  runBufferContract(`sqlite (${commitMode} commit)`, async (options) => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'events.db');
    let buffer: EventBuffer = new SqliteBuffer({ ...options, file, commitMode });
    return {
      buffer,
      reopen: async () => {
        await buffer.close();
        buffer = new SqliteBuffer({ ...options, file, commitMode });
        return buffer;
      },
      cleanup: async () => {
        await buffer.close();
        tmp.remove();
      },
    };
  });
}

// Beside the SQLite store, parked thin notifications are a file in the data dir.
runParkedContract('data-dir file', async () => {
  const tmp = tempDir();
  return {
    store: new ParkedFile(tmp.dir),
    another: async () => new ParkedFile(tmp.dir),
    cleanup: async () => tmp.remove(),
  };
});

describe('sqlite buffer', () => {
  // SQLite's own automatic checkpoint is off on the writer connection (it made the batch that
  // crossed the threshold wait); the writer checkpoints between batches instead. Without those
  // checkpoints the WAL would hold every page written since the file was opened.
  it.each(['group', 'each'] as CommitMode[])(
    'keeps the WAL short under a stream of appends (%s commit)',
    async (commitMode) => {
      const tmp = tempDir();
      const file = path.join(tmp.dir, 'e.db');
      const buffer = new SqliteBuffer({ file, commitMode });
      const pad = 'x'.repeat(3500);
      try {
        let written = 0;
        for (let round = 0; round < 20; round++) {
          const batch = Array.from({ length: 100 }, (_, i) => {
            const event = incoming(round * 100 + i);
            return { ...event, payload: event.payload.replace('"data"', `"pad":"${pad}","data"`) };
          });
          const results = await Promise.all(batch.map((e) => buffer.append(e)));
          expect(results.every((r) => r.status === 'queued')).toBe(true);
          written += batch.reduce((n, e) => n + e.payload.length, 0);
        }
        expect(written).toBeGreaterThan(7_000_000);
        // A WAL of a checkpoint interval or two (each commit rewrites the index pages it touches,
        // so a commit per event writes more pages), against 7 MB of payloads appended.
        expect(fs.statSync(`${file}-wal`).size).toBeLessThan(
          commitMode === 'group' ? 3_000_000 : 6_000_000,
        );
        expect((await buffer.stats()).counts.pending).toBe(2000);
      } finally {
        await buffer.close();
        tmp.remove();
      }
    },
  );

  // Filtering the (status, seq) index by type walked every pending event before a rare type's
  // (2.3 s on a million, bench/backlog.mjs). The plan is what keeps it off that walk.
  it('reads type-filtered lists and claims from the (status, type, seq) index', async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'e.db');
    const buffer = new SqliteBuffer({ file });
    await buffer.append(incoming(1));
    await buffer.close();
    const db = new Database(file, { readonly: true });
    try {
      const plan = (sql: string) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('pending', 'x', 0, 1) as { detail: string }[])
          .map((r) => r.detail)
          .join('; ');
      expect(plan(TYPED_SQL.list)).toMatch(
        /^SEARCH events USING COVERING INDEX events_status_type_seq \(status=\? AND type=\? AND seq>\?\)$/,
      );
      expect(plan(TYPED_SQL.due.replace("'pending'", '?'))).toMatch(
        /^SEARCH events USING INDEX events_status_type_seq \(status=\? AND type=\?\)$/,
      );
    } finally {
      db.close();
      tmp.remove();
    }
  });

  it('creates the store readable by its owner only, its WAL too', async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'e.db');
    const buffer = new SqliteBuffer({ file });
    try {
      await buffer.append(incoming(1));
      for (const f of [file, `${file}-wal`, `${file}-shm`]) {
        expect(fs.statSync(f).mode & 0o777, f).toBe(0o600);
      }
    } finally {
      await buffer.close();
      tmp.remove();
    }
  });

  it('migrates a schema 2 store: the newest created comes from its events, once', async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'e.db');
    try {
      const before = new SqliteBuffer({ file });
      await before.append({ ...incoming(1), created: 1_786_000_300 });
      await before.append({ ...incoming(2), created: 1_786_000_100 });
      await before.close();
      // Back to what schema 2 wrote: no meta table.
      const raw = new Database(file);
      raw.exec('DROP TABLE meta');
      raw.pragma('user_version = 2');
      raw.close();
      const after = new SqliteBuffer({ file });
      try {
        expect(await after.newestCreated()).toBe(1_786_000_300);
        await after.append({ ...incoming(3), created: 1_786_000_200 });
        expect(await after.newestCreated()).toBe(1_786_000_300);
      } finally {
        await after.close();
      }
    } finally {
      tmp.remove();
    }
  });

  it('migrates a schema 6 store to outcomes, idempotently: old acks read as no outcome', async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'e.db');
    try {
      const before = new SqliteBuffer({ file });
      await before.append(incoming(1));
      await before.append(incoming(2));
      await before.ack(incoming(1).id, { by: 'cli:bob' });
      await before.close();
      // Back to what schema 6 wrote: no outcome column, no outcome index.
      const raw = new Database(file);
      raw.exec('DROP INDEX events_outcome_seq');
      raw.exec('ALTER TABLE events DROP COLUMN outcome');
      raw.pragma('user_version = 6');
      raw.close();
      for (let round = 0; round < 2; round++) {
        const after = new SqliteBuffer({ file });
        try {
          expect(await after.get(incoming(1).id)).toMatchObject({ status: 'acked', outcome: null });
          if (round === 0) await after.ack(incoming(2).id, { by: 'cli:bob' });
          const page = await after.list({ outcomes: ['handled'], limit: 10 });
          expect(page.events.map((e) => e.id)).toEqual([incoming(2).id]);
        } finally {
          await after.close();
        }
        // A store that already has the column (another branch's step ran first) migrates too.
        const again = new Database(file);
        again.pragma('user_version = 6');
        again.close();
      }
    } finally {
      tmp.remove();
    }
  });

  it('catches a duplicate after the recent-ids cache evicted it', async () => {
    const tmp = tempDir();
    const buffer = new SqliteBuffer({ file: path.join(tmp.dir, 'e.db'), recentIdsMax: 2 });
    try {
      for (let i = 1; i <= 5; i++) expect((await buffer.append(incoming(i))).status).toBe('queued');
      // ids 1–3 are no longer in the 2-entry cache: only the unique key can catch them now.
      for (let i = 1; i <= 5; i++)
        expect((await buffer.append(incoming(i))).status).toBe('duplicate');
      expect((await buffer.stats()).counts.pending).toBe(5);
    } finally {
      await buffer.close();
      tmp.remove();
    }
  });

  it('shares state with a second connection on the same file, as the CLI does', async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'e.db');
    const server = new SqliteBuffer({ file });
    const cli = new SqliteBuffer({ file });
    try {
      await server.append(incoming(1));
      await server.append(incoming(2));
      await cli.ack(incoming(1).id, { note: 'from the cli' });
      expect(await server.get(incoming(1).id)).toMatchObject({ status: 'acked' });
      expect((await server.stats()).counts).toMatchObject({ pending: 1, acked: 1 });
      // The server's cache never saw id 3 get stored by the CLI connection; the key still holds.
      await cli.append(incoming(3));
      expect((await server.append(incoming(3))).status).toBe('duplicate');
    } finally {
      await server.close();
      await cli.close();
      tmp.remove();
    }
  });

  it('notices commits made by another process on the same file', async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'e.db');
    const server = new SqliteBuffer({ file });
    const other = new SqliteBuffer({ file });
    const seen: string[] = [];
    const stop = server.watch((c) => seen.push(c.kind));
    try {
      await other.append(incoming(1));
      const deadline = Date.now() + 10_000;
      while (!seen.includes('external') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(seen).toContain('external');
      // Its own commits are announced once, with their id, not again as external.
      seen.length = 0;
      await server.ack(incoming(1).id);
      await new Promise((r) => setTimeout(r, 300));
      expect(seen).toEqual(['acked']);
    } finally {
      stop();
      await server.close();
      await other.close();
      tmp.remove();
    }
  });

  it('answers a claim before the fsync of an outcome sent in the same turn (group commit)', async () => {
    const tmp = tempDir();
    const buffer = new SqliteBuffer({ file: path.join(tmp.dir, 'e.db') });
    try {
      await buffer.append(incoming(1));
      await buffer.append(incoming(2));
      const [first] = await buffer.claim({ owner: 'w', leaseMs: 60_000 });
      // A worker hands over its ack and claims its next event at once (the agent loop does).
      const order: string[] = [];
      const ack = buffer
        .ack(first!.id, { token: first!.leaseOwner!, note: 'done' })
        .then(() => order.push('ack'));
      const next = buffer
        .claim({ owner: 'w', leaseMs: 60_000 })
        .then((got) => order.push(`claim ${got[0]?.id}`));
      await Promise.all([ack, next]);
      // The claim commits first without an fsync; the ack's commit (fsynced) follows.
      expect(order).toEqual([`claim ${incoming(2).id}`, 'ack']);
      expect(await buffer.get(incoming(1).id)).toMatchObject({ status: 'acked' });
      expect(await buffer.get(incoming(2).id)).toMatchObject({ status: 'claimed' });
    } finally {
      await buffer.close();
      tmp.remove();
    }
  });

  it('commits appends still waiting for the group commit when closed', async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'e.db');
    const buffer = new SqliteBuffer({ file });
    const pending = [buffer.append(incoming(1)), buffer.append(incoming(2))];
    await buffer.close();
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual(['queued', 'queued']);
    const again = new SqliteBuffer({ file });
    expect((await again.stats()).counts.pending).toBe(2);
    await again.close();
    tmp.remove();
  });
});
