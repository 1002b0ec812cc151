import t from 'tap';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { connectToken, tlsKeyPem } from '../../device-sim/index.js';
import { createCtiCache, generateKeyPair, importPublicKey, nobleSigner, verifyConnectToken, type CoseAlg } from '../../protocol/index.js';

const NOW = 1_700_000_000_000;

for (const alg of ['EdDSA', 'ES256'] as CoseAlg[]) {
  t.test(`a device's connect token verifies under the gateway's section 4 checks (${alg})`, (t) => {
    const { privateKey, publicKey } = generateKeyPair(alg);
    const signer = nobleSigner(alg, privateKey);
    const key = importPublicKey(alg, publicKey);
    if (!key.ok) throw new Error('key');
    const cache = createCtiCache();
    const ctx = { username: 'dev-1', clientId: 'dev-1', gatewayId: 'gw-1', nowMs: NOW };
    const token = connectToken(signer, 'dev-1', 'gw-1', NOW);
    const first = verifyConnectToken(token, key.value, ctx, cache);
    t.ok(first.ok, 'accepted');
    if (first.ok) {
      t.equal(first.value.iat, Math.floor(NOW / 1000), 'iat in whole seconds');
      t.equal(first.value.cti.length, 16, '16 random bytes of cti');
    }
    const again = verifyConnectToken(token, key.value, ctx, cache);
    t.equal(again.ok ? 'ok' : again.reason, 'EDGEGW_CWT_REPLAYED', 'the same token twice is refused');
    const fresh = verifyConnectToken(connectToken(signer, 'dev-1', 'gw-1', NOW), key.value, ctx, cache);
    t.ok(fresh.ok, 'a new token per connect (fresh cti) is accepted');
    const skewed = verifyConnectToken(connectToken(signer, 'dev-1', 'gw-1', NOW + 301_000), key.value, ctx, cache);
    t.equal(skewed.ok ? 'ok' : skewed.reason, 'EDGEGW_CWT_EXPIRED', 'a device clock off by more than 300 s');
    t.end();
  });

  t.test(`the TLS key made from the flash is the signing key (${alg})`, (t) => {
    const { privateKey, publicKey } = generateKeyPair(alg);
    const pem = tlsKeyPem(alg, privateKey);
    const keyObject = createPrivateKey(pem);
    const data = Buffer.from('tls certificate verify');
    const sig = sign(alg === 'EdDSA' ? null : 'sha256', data, keyObject);
    const spkiFromRaw = importPublicKey(alg, publicKey);
    if (!spkiFromRaw.ok) throw new Error('key');
    t.ok(verify(alg === 'EdDSA' ? null : 'sha256', data, spkiFromRaw.value.keyObject, sig), 'a signature by the PEM key verifies under the raw public key');
    t.equal(createPublicKey(keyObject).asymmetricKeyType, alg === 'EdDSA' ? 'ed25519' : 'ec');
    t.end();
  });
}
