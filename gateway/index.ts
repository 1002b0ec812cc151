/**
 * The gateway's public surface: the composition root, configuration, and the registrar
 * used by the CLI, the simulator and the provisioning station.
 */
export { createGateway, type Gateway, type GatewayDeps, type ReadyInfo } from './main.js';
export { parseConfig, loadConfig, ConfigSchema, type GatewayConfig, type GatewayConfigInput } from './config.js';
export { openRegistrar, type Registrar, type Registration } from './registrar.js';
export { dataPaths, loadOrCreateIdentity, type GatewayIdentity } from './identity.js';
export { createStore, readStatus, type Store } from './store/index.js';
export { parseMark, isRunning } from './liveness.js';
