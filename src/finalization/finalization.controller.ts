import { Controller, Get, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiOkResponse, ApiOperation, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';

import { ApiKeyGuard, RequireScope } from '../auth/api-key.guard.js';
import { API_KEY_SCHEME } from '../common/protocol.constants.js';
import { DrainState } from '../lifecycle/drain-state.js';
import type { FinalizeStats } from './finalize-queue.js';
import { FinalizationService } from './finalization.service.js';

/** The finalization queue as operators see it: how many dumps wait, run, or wait to be retried. */
@ApiTags('admin')
@ApiBearerAuth(API_KEY_SCHEME)
@Controller('admin/finalization')
@UseGuards(ApiKeyGuard)
@RequireScope('admin')
export class FinalizationController {
  constructor(
    private readonly finalization: FinalizationService,
    private readonly drain: DrainState,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Finalization queue depth (dumps waiting to be stored and recorded) and retries' })
  @ApiOkResponse({
    schema: { example: { depth: 3, queued: 1, running: 2, retrying: 0, finalized: 1200, failedAttempts: 4, concurrency: 2, draining: false } },
  })
  @ApiUnauthorizedResponse({ description: 'Missing or unknown API key' })
  @ApiForbiddenResponse({ description: 'The API key lacks the admin scope' })
  status(): FinalizeStats & { depth: number; draining: boolean } {
    const queue = this.finalization.queue;
    return { depth: queue.depth, ...queue.stats, draining: this.drain.draining };
  }
}
