import { holdYoungGenerationDuringBoot } from './lifecycle/young-generation.js';

// Before the rest of the application is even loaded: parsing its modules is what grows the young
// generation most, and a static import would load them all before this line runs.
const release = holdYoungGenerationDuringBoot();
const { bootstrap } = await import('./bootstrap.js');
void bootstrap().then(release);
