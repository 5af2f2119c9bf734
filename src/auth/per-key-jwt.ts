import type { KeyObject } from 'node:crypto';

import { Injectable } from '@nestjs/common';
import { JwtService, type JwtSignOptions, type JwtVerifyOptions } from '@nestjs/jwt';

/**
 * @nestjs/jwt's JwtService, one instance per keyring key, so every token is signed and verified
 * by JwtService with the keyring's KeyObjects (about 50x faster than string secrets). Keys change
 * with every reload, so no module-wide secret fits. A per-call `secret` works as well, but
 * JwtService deletes it from the options it hands to jsonwebtoken, which then reads a slow
 * dictionary-mode object: 20% fewer verifications per second than one instance per key, which is
 * within 4% of calling jsonwebtoken directly (README, design notes). Cached weakly: a key dropped
 * by a reload takes its instance with it.
 */
@Injectable()
export class PerKeyJwt {
  private readonly services = new WeakMap<KeyObject, JwtService>();

  sign(payload: object, key: KeyObject, options: JwtSignOptions): string {
    return this.service(key).sign(payload, options);
  }

  verify(token: string, key: KeyObject, options: JwtVerifyOptions): unknown {
    return this.service(key).verify(token, options);
  }

  private service(key: KeyObject): JwtService {
    let service = this.services.get(key);
    if (service === undefined) {
      service = new JwtService({ secret: key });
      this.services.set(key, service);
    }
    return service;
  }
}
