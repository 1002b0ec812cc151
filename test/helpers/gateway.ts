// A real gateway in this process: real Aedes on port 0, real TLS, real SQLite in a temp dir.
import { createGateway, parseConfig, openRegistrar, type Gateway, type ReadyInfo, type Registrar, type GatewayConfigInput, type GatewayDeps } from '../../gateway/index.js';
import { silentLogger } from '../../common/log.js';
import { systemClock, type Clock } from '../../common/clock.js';
import { tempDir, type Teardown } from './tmp.js';

export interface RunningGateway {
  gateway: Gateway;
  ready: ReadyInfo;
  dataDir: string;
  registrar: Registrar;
}

export async function startGateway(
  t: Teardown,
  overrides: Partial<GatewayConfigInput> = {},
  clock: Clock = systemClock,
  extra: Pick<GatewayDeps, 'verifyWorkerUrl'> = {},
): Promise<RunningGateway> {
  const dataDir = overrides.dataDir ?? tempDir(t, 'edgegw-gw-');
  const registrar = await openRegistrar({ log: silentLogger(), clock }, dataDir);
  const config = parseConfig({ host: '127.0.0.1', mqttsPort: 0, verifyWorkers: 0, logLevel: 'silent', ...overrides, dataDir });
  const gateway = createGateway({ log: silentLogger(), clock, ...extra }, config);
  const ready = await gateway.start();
  t.teardown(async () => {
    await gateway.stop();
    registrar.close();
  });
  return { gateway, ready, dataDir, registrar };
}
