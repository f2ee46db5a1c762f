import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { addressRefusal, classifyAddress, NO_ALLOWANCE } from '../../../src/mcp/events/address.js';
import { CallbackUrlError, checkCallbackUrl } from '../../../src/mcp/events/callback.js';
import { secretKey, signedHeaders } from '../../../src/mcp/events/signature.js';

describe('the callback address rule', () => {
  it.each([
    ['169.254.169.254', 'metadata'],
    ['169.254.1.1', 'link-local'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fd00:ec2::254', 'metadata'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['ff02::1', 'multicast'],
    ['not an ip', 'invalid'],
  ])('%s is %s', (ip, kind) => {
    expect(classifyAddress(ip)).toBe(kind);
    expect(addressRefusal(ip, NO_ALLOWANCE)).toMatch(/callback address/);
  });

  it.each([
    '8.8.8.8',
    '172.32.0.1',
    '172.15.255.255',
    '192.169.0.1',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
  ])('%s is public', (ip) => {
    expect(classifyAddress(ip)).toBeNull();
    expect(addressRefusal(ip, NO_ALLOWANCE)).toBeNull();
  });

  it('allows loopback only with the loopback allowance, private ranges only with theirs, metadata never', () => {
    expect(addressRefusal('127.0.0.1', { loopback: true, privateRanges: false })).toBeNull();
    expect(addressRefusal('10.0.0.1', { loopback: true, privateRanges: false })).not.toBeNull();
    expect(addressRefusal('10.0.0.1', { loopback: false, privateRanges: true })).toBeNull();
    const all = { loopback: true, privateRanges: true };
    expect(addressRefusal('169.254.169.254', all)).toMatch(/metadata/);
    expect(addressRefusal('fd00:ec2::254', all)).toMatch(/metadata/);
    expect(addressRefusal('fe80::1', all)).toMatch(/link local/);
    expect(addressRefusal('0.0.0.0', all)).toMatch(/unspecified/);
  });

  it('checks callback URLs at subscribe: https, literal addresses, http only to allowed loopback', () => {
    const refuse = (url: string, allow = NO_ALLOWANCE) =>
      expect(() => checkCallbackUrl(url, allow)).toThrow(CallbackUrlError);
    refuse('http://example.com/hook');
    refuse('ftp://example.com/hook');
    refuse('https://user:pw@example.com/hook');
    refuse('https://example.com/hook#frag');
    refuse('https://169.254.169.254/latest/meta-data');
    refuse('https://[fe80::1]/hook');
    refuse('https://10.1.2.3/hook');
    refuse('https://127.0.0.1/hook');
    refuse('https://localhost/hook');
    refuse('http://127.0.0.1:9/hook');
    refuse('http://10.0.0.1/hook', { loopback: true, privateRanges: true });
    expect(checkCallbackUrl('https://example.com/hook', NO_ALLOWANCE).hostname).toBe('example.com');
    const loopback = { loopback: true, privateRanges: false };
    expect(checkCallbackUrl('http://127.0.0.1:9/hook', loopback).port).toBe('9');
    expect(checkCallbackUrl('http://[::1]:9/hook', loopback).port).toBe('9');
  });
});

describe('Standard Webhooks signing', () => {
  it('signs so that the standardwebhooks library verifies it', () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    const body = JSON.stringify({ eventId: 'evt_1', name: 'x' });
    const headers = signedHeaders(secret, 'evt_1', 'sub_1', body, Date.now());
    expect(headers['x-mcp-subscription-id']).toBe('sub_1');
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(secret).verify(body + ' ', headers)).toThrow();
  });

  it('accepts only whsec_ secrets of 24–64 bytes', () => {
    expect(secretKey(`whsec_${Buffer.alloc(24).toString('base64')}`)).not.toBeNull();
    expect(secretKey(`whsec_${Buffer.alloc(23).toString('base64')}`)).toBeNull();
    expect(secretKey(`whsec_${Buffer.alloc(65).toString('base64')}`)).toBeNull();
    expect(secretKey('sk_test_123')).toBeNull();
  });
});
