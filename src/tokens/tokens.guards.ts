import {
  BadRequestException,
  type CanActivate,
  type ExecutionContext,
  Injectable,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';

import type { ApiKeyRequest } from '../auth/api-key.guard.js';

export const RATE_LIMIT_MESSAGE = 'Too many token requests for this API key; retry later';

/** Per-API-key rate limit; runs after ApiKeyGuard, which sets apiKeyId. */
@Injectable()
export class ApiKeyThrottlerGuard extends ThrottlerGuard {
  protected override async getTracker(req: Pick<ApiKeyRequest, 'apiKeyId'>): Promise<string> {
    return `api-key:${req.apiKeyId}`;
  }
}

interface JsonRequest {
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  /** Express: false when there is a body of another type, null when there is no body. */
  is(type: string): string | false | null;
}

/**
 * Refuses bodies that are not a JSON object before validation runs: the JSON parser skips other
 * types, which would otherwise reach the validator as an empty (and valid) request, and the
 * validator would describe an array by its indexes.
 */
@Injectable()
export class JsonBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<JsonRequest>();
    // An empty body (all fields default) needs no type; Express counts Content-Length: 0 as a body.
    if (req.headers['content-length'] === '0') return true;
    if (req.is('application/json') === false) {
      throw new UnsupportedMediaTypeException('Content-Type must be application/json');
    }
    if (Array.isArray(req.body)) {
      throw new BadRequestException({ statusCode: 400, error: 'Bad Request', message: ['the body must be a JSON object'] });
    }
    return true;
  }
}
