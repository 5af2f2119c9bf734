import { Body, Controller, HttpCode, Post, UseGuards, UsePipes, ValidationPipe } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiBody,
  ApiCreatedResponse,
  ApiForbiddenResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
  ApiUnsupportedMediaTypeResponse,
} from '@nestjs/swagger';

import { API_KEY_SCHEME } from '../common/protocol.constants.js';
import { ApiKeyGuard, forbiddenMessage, NO_API_KEY_MESSAGE, RequireScope, UNAUTHORIZED_MESSAGE } from '../auth/api-key.guard.js';
import { CreateTokenDto } from './dto/create-token.dto.js';
import { TokenResponseDto } from './dto/token-response.dto.js';
import { ApiKeyThrottlerGuard, JsonBodyGuard, RATE_LIMIT_MESSAGE } from './tokens.guards.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { TokensService } from './tokens.service.js';


const error = (statusCode: number, error: string, message: string | string[]) => ({
  schema: { example: { statusCode, error, message } },
});

@ApiTags('tokens')
@ApiBearerAuth(API_KEY_SCHEME)
@Controller('tokens')
// Order matters: authenticate, then rate-limit per key, then look at the body.
@UseGuards(ApiKeyGuard, ApiKeyThrottlerGuard, JsonBodyGuard)
@RequireScope('tokens')
@UsePipes(
  new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true, stopAtFirstError: true, transform: true }),
)
export class TokensController {
  constructor(
    private readonly tokens: TokensService,
    private readonly metrics: MetricsService,
  ) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({
    summary: 'Mint a client token',
    description:
      'For app backends: returns a token, signed with the collector\'s current key, that a browser passes as ' +
      '?rtcstats-token= when it opens the WebSocket. The claims end up in the dump\'s metadata record.',
  })
  @ApiBody({
    type: CreateTokenDto,
    examples: {
      full: { summary: 'All claims, 1 hour', value: { user: 'alice@example.com', session: 'session-42', conference: 'weekly-sync', expiresIn: '1h' } },
      seconds: { summary: 'Lifetime in seconds', value: { user: 'bob', expiresIn: 600 } },
      defaults: { summary: 'No claims, default lifetime (6 h)', value: {} },
    },
  })
  @ApiCreatedResponse({ type: TokenResponseDto })
  @ApiBadRequestResponse({
    description: 'A field breaks a rule, or the body has an unknown field.',
    ...error(400, 'Bad Request', ['user must be shorter than or equal to 256 characters', 'property admin should not exist']),
  })
  @ApiUnauthorizedResponse({
    description: 'Missing or wrong API key (one answer for every cause). Sent with WWW-Authenticate: Bearer.',
    ...error(401, 'Unauthorized', UNAUTHORIZED_MESSAGE),
  })
  @ApiForbiddenResponse({ description: 'The API key lacks the "tokens" scope.', ...error(403, 'Forbidden', forbiddenMessage('tokens')) })
  @ApiPayloadTooLargeResponse({ description: 'Body over 4 KB.', ...error(413, 'Payload Too Large', 'request entity too large') })
  @ApiUnsupportedMediaTypeResponse({
    description: 'The body is not application/json.',
    ...error(415, 'Unsupported Media Type', 'Content-Type must be application/json'),
  })
  @ApiTooManyRequestsResponse({
    description: 'Rate limit of this API key, or too many failed authentications from this client. Sent with Retry-After (seconds).',
    schema: { example: { statusCode: 429, message: RATE_LIMIT_MESSAGE } },
  })
  @ApiServiceUnavailableResponse({
    description: 'No API key (or no signing key) is configured.',
    ...error(503, 'Service Unavailable', NO_API_KEY_MESSAGE),
  })
  create(@Body() body: CreateTokenDto): TokenResponseDto {
    const minted = this.tokens.create(body);
    this.metrics.tokensMinted.inc();
    return minted;
  }
}
