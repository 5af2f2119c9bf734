import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, Matches, MaxLength, ValidateBy, ValidateIf, type ValidationOptions } from 'class-validator';

import { MAX_CLAIM_LENGTH } from '../../auth/token-verifier.js';
import { parseDurationSeconds } from '../../config/app-config.js';

/** C0 and C1 control characters and DEL: they break log lines and dump headers downstream. */
const NO_CONTROL_CHARACTERS = /^[^\p{Cc}]*$/u;

/** Whole seconds (a number) or a duration string ("600", "10m", "6h", "1d"); the range is checked against the configuration. */
function IsLifetime(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isLifetime',
      validator: {
        validate: (value: unknown) =>
          (typeof value === 'number' && Number.isSafeInteger(value)) ||
          (typeof value === 'string' && parseDurationSeconds(value) !== undefined),
        defaultMessage: () => '$property must be a whole number of seconds or a duration string such as "600s", "10m", "6h"',
      },
    },
    options,
  );
}

/** A claim: absent, or a short printable string. `null` is refused rather than silently dropped. */
function Claim(description: string, example: string): PropertyDecorator {
  const decorators = [
    ApiPropertyOptional({ description, example, type: String, maxLength: MAX_CLAIM_LENGTH }),
    ValidateIf((_object: object, value: unknown) => value !== undefined),
    IsString(),
    MaxLength(MAX_CLAIM_LENGTH),
    Matches(NO_CONTROL_CHARACTERS, { message: '$property must not contain control characters' }),
  ];
  return (target, key) => decorators.forEach((d) => d(target, key));
}

export class CreateTokenDto {
  @Claim('Stored as the dump\'s user in the metadata record.', 'alice@example.com')
  user?: string;

  @Claim('Stored as the dump\'s session.', 'session-42')
  session?: string;

  @Claim('Stored as the dump\'s conference.', 'weekly-sync')
  conference?: string;

  @ApiPropertyOptional({
    description: 'Token lifetime: seconds, or a duration string (s, m, h, d). Default 6h; at least 60 s, at most the configured maximum (24 h by default).',
    oneOf: [{ type: 'integer', minimum: 60 }, { type: 'string', pattern: '^\\d+\\s*[smhd]?$' }],
    example: '6h',
  })
  @ValidateIf((_object: object, value: unknown) => value !== undefined)
  @IsLifetime()
  expiresIn?: number | string;
}
