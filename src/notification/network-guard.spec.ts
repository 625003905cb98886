import { refusalFor } from './network-guard';

describe('refusalFor (SPEC §13 SSRF rules)', () => {
  it.each(['169.254.169.254', '169.254.0.1', 'fe80::1', 'fd00:ec2::254', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '0.0.0.0', '224.0.0.1', '::'])(
    'never reaches %s, even with private networks allowed',
    (address) => {
      expect(refusalFor(address, true)).toMatch(/never reachable/);
      expect(refusalFor(address, false)).toMatch(/never reachable/);
    },
  );

  it.each(['127.0.0.1', '10.0.0.5', '172.16.3.4', '192.168.1.1', '100.64.0.1', '::1', 'fd12:3456::1', '::ffff:127.0.0.1', '::ffff:7f00:1'])(
    'reaches the loopback or private %s only when allowed',
    (address) => {
      expect(refusalFor(address, false)).toMatch(/loopback or private/);
      expect(refusalFor(address, true)).toBeUndefined();
    },
  );

  it.each(['93.184.215.14', '2606:4700::1111', '172.32.0.1', '8.8.8.8'])('reaches the public %s', (address) => {
    expect(refusalFor(address, false)).toBeUndefined();
  });
});
