import { loadConfig } from '../config/configuration';
import { loggerParams, prettyLogs } from './logging';

/** Development at a terminal reads pino-pretty lines; anything else (a pipe, a file, production) JSON lines. */
const transportOf = (nodeEnv: string, stdoutIsTTY: boolean) => {
  const config = loadConfig({ NODE_ENV: nodeEnv, DATABASE_URL: 'postgres://localhost/x', ADMIN_API_KEY: 'a'.repeat(32) });
  const pinoHttp = loggerParams(config, stdoutIsTTY).pinoHttp as { transport?: { target: string } };
  return pinoHttp.transport?.target;
};

it('pretty lines only in development with a terminal on stdout', () => {
  expect(transportOf('development', true)).toBe('pino-pretty');
  expect(transportOf('development', false)).toBeUndefined();
  expect(transportOf('production', true)).toBeUndefined();
  expect(transportOf('production', false)).toBeUndefined();
  expect(transportOf('test', true)).toBeUndefined();
});

it('the decision itself', () => {
  expect([prettyLogs('development', true), prettyLogs('development', false), prettyLogs('production', true)]).toEqual([
    true,
    false,
    false,
  ]);
});

it('pino-pretty is installed where the transport looks for it', () => {
  expect(() => require.resolve('pino-pretty')).not.toThrow();
});
