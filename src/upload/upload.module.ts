import { Module } from '@nestjs/common';

import { AuthModule } from '../auth/auth.module.js';
import { FinalizationModule } from '../finalization/finalization.module.js';
import { UploadHandler } from './upload.handler.js';

@Module({ imports: [AuthModule, FinalizationModule], providers: [UploadHandler], exports: [UploadHandler] })
export class UploadModule {}
