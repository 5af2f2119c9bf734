import { Controller, Get, Inject, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiOkResponse, ApiOperation, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';

import { ApiKeyGuard, forbiddenMessage, RequireScope } from '../auth/api-key.guard.js';
import { KeyUsage } from '../auth/key-usage.js';
import { CLOCK, type Clock } from '../common/clock.js';
import { API_KEY_SCHEME } from '../common/protocol.constants.js';
import { KeyringService } from '../keyring/keyring.service.js';

export interface KeyStatus {
  kid: string;
  /** The key's state, or "removed" for a kid that verified tokens earlier but is gone now. */
  state: string;
  notAfter: string | null;
  expired: boolean;
  verifications: number;
  lastVerifiedAt: string | null;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

/**
 * Read-only keyring status for operators: states and, per kid, how many client tokens it verified
 * and when it last did (what tells when a `previous` key can be retired). Never secrets.
 */
@ApiTags('admin')
@ApiBearerAuth(API_KEY_SCHEME)
@Controller('admin/keys')
@UseGuards(ApiKeyGuard)
@RequireScope('admin')
export class KeysController {
  constructor(
    private readonly keyring: KeyringService,
    private readonly usage: KeyUsage,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Keyring status and per-kid verification counts (no secrets)' })
  @ApiOkResponse({
    schema: {
      example: {
        source: '/etc/rtcstats/keyring.json',
        keys: [{ kid: '2026-11', state: 'current', notAfter: null, expired: false, verifications: 1520, lastVerifiedAt: '2026-11-28T06:00:00.000Z' }],
        reloads: { reloads: 2, failures: 0, lastReloadAt: '2026-11-28T05:00:00.000Z', lastFailure: null },
      },
    },
  })
  @ApiUnauthorizedResponse({ description: 'Missing or wrong API key.' })
  @ApiForbiddenResponse({ description: forbiddenMessage('admin') })
  status() {
    const now = this.clock();
    const keyring = this.keyring.get();
    const listed = new Set<string>();
    const keys: KeyStatus[] = (keyring?.keys ?? []).map((k) => {
      listed.add(k.kid);
      const used = this.usage.get(k.kid);
      return {
        kid: k.kid,
        state: k.state,
        notAfter: iso(k.notAfter),
        expired: k.notAfter !== undefined && now > k.notAfter,
        verifications: used?.verifications ?? 0,
        lastVerifiedAt: iso(used?.lastVerifiedAt),
      };
    });
    for (const used of this.usage.all()) {
      if (listed.has(used.kid)) continue;
      keys.push({ kid: used.kid, state: 'removed', notAfter: null, expired: false, verifications: used.verifications, lastVerifiedAt: iso(used.lastVerifiedAt) });
    }
    const { reloads, failures, lastReloadAt, lastFailure } = this.keyring.stats;
    return {
      source: keyring?.source ?? null,
      keys,
      reloads: { reloads, failures, lastReloadAt: iso(lastReloadAt), lastFailure: lastFailure ?? null },
    };
  }
}
