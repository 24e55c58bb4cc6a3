-- Which IQA columns hold the member's address state and country (libs/common/audience_members.py), as the
-- mobile column is set: the defaults are the aliases an IQA on iMIS's CsContact gives them. The state fills
-- run_recipients.address_state (0044) for the quiet hours; NULL means the IQA has no such column (the
-- number's area code then places the member; without a country column a state is taken as a US one).
ALTER TABLE audience_column_maps
    ADD COLUMN state_column   text DEFAULT 'State',
    ADD COLUMN country_column text DEFAULT 'Country';
