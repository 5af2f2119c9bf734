import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class TokenResponseDto {
  @ApiProperty({
    description: 'Client token (HS256 JWT) for the rtcstats-token parameter of the WebSocket URL.',
    example: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImstMjAyNi0xMS0yOC1hYmNkZWYifQ.eyJydGNTdGF0cyI6eyJ1c2VyIjoiYWxpY2UifX0.c2lnbmF0dXJl',
  })
  token!: string;

  @ApiProperty({ description: 'Key id of the signing key (the keyring\'s current key).', example: 'k-2026-11-28-abcdef' })
  kid!: string;

  @ApiProperty({ description: 'When the token expires (its exp claim).', format: 'date-time', example: '2026-11-28T18:00:00.000Z' })
  expiresAt!: string;

  @ApiProperty({ description: 'Token lifetime in seconds.', example: 21600 })
  expiresIn!: number;

  @ApiProperty({
    description: 'When to fetch a new token: at 60% of the lifetime, leaving margin for clock skew and retries.',
    format: 'date-time',
    example: '2026-11-28T15:36:00.000Z',
  })
  refreshAfter!: string;

  @ApiPropertyOptional({
    description: 'Ready-to-use WebSocket URL with ?rtcstats-token=, when RTCSTATS_PUBLIC_URL is configured.',
    example: 'wss://rtcstats.example.com/?rtcstats-token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...',
  })
  url?: string;
}
