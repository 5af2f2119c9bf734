import type { KeyObject } from 'node:crypto';

import { Injectable } from '@nestjs/common';
import { JwtService, type JwtSignOptions } from '@nestjs/jwt';

/**
 * @nestjs/jwt's JwtService, one instance per keyring key, so every token is signed by JwtService
 * with the keyring's KeyObjects (about 50x faster than string secrets). Keys change with every
 * reload, so no module-wide secret fits. Cached weakly: a key dropped by a reload takes its
 * instance with it. Client tokens are verified by TokenVerifier itself (HS256 only; see there).
 */
@Injectable()
export class PerKeyJwt {
  private readonly services = new WeakMap<KeyObject, JwtService>();

  sign(payload: object, key: KeyObject, options: JwtSignOptions): string {
    return this.service(key).sign(payload, options);
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
