import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';

describe('logger', () => {
  it('writes one JSON line per record at or above its level, with secrets and bodies redacted', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', write: (l) => lines.push(l) });
    log.debug('hidden');
    log.info('hello', {
      id: 'evt_1',
      secret: 'whsec_x',
      nested: { authorization: 'Bearer t', payload: '{"email":"a@b.c"}', ok: 1 },
      error: Object.assign(new Error('boom'), { code: 'E1' }),
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    const record = JSON.parse(lines[0]!);
    expect(record).toMatchObject({
      level: 'info',
      msg: 'hello',
      id: 'evt_1',
      secret: '[redacted]',
      nested: { authorization: '[redacted]', payload: '[redacted]', ok: 1 },
      error: { name: 'Error', message: 'boom', code: 'E1' },
    });
    expect(lines[0]).not.toContain('whsec_x');
    expect(lines[0]).not.toContain('a@b.c');
  });
});
